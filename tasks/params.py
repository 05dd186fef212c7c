"""Apply flow overrides to params.yaml, with the meaning of ``dvc exp run -S key=value``.

``dvc exp run -S`` edits params.yaml in the workspace and then reproduces the pipeline; a
flow does the same in two steps so that each stage stays its own Prefect task:

1. validate: ``trainflow.config.load_config(params, overrides)`` resolves the overrides on top
   of params.yaml exactly as the ``trainflow`` CLI does, so an unknown key or a bad value
   raises :class:`~trainflow.errors.ConfigError` before any file is touched or stage runs;
2. write: params.yaml is edited as a round trip with ruamel.yaml (the parser DVC itself uses
   to edit params), so comments, key order and formatting survive, and replaced atomically;
3. check: the file is read back and must resolve to the same experiment id as step 1; if not,
   the original text is put back and a ConfigError says which keys are at fault.

DVC then sees the changed params and reruns exactly the stages that depend on them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from trainflow.config import diff, experiment_id, load_config, parse_override, to_dict
from trainflow.errors import ConfigError
from trainflow.io import atomic_write_text


def override_strings(overrides: Mapping[str, Any]) -> list[str]:
    """``{"train.optimizer.lr": 0.003}`` -> ``["train.optimizer.lr=0.003"]`` (CLI syntax).

    Strings pass through as typed on a command line; other values are written as JSON, which
    is valid YAML, so lists, booleans and null keep their type.
    """
    return [f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in overrides.items()]


def apply_overrides(params_path: str | Path, overrides: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Validate ``overrides`` and write them into ``params_path``; return ``{key: (old, new)}``.

    Every override is written, as ``dvc exp run -S`` does, even one that sets a default that
    params.yaml did not spell out (DVC tracks the keys in the file); the file is left alone
    when that changes nothing in its text. Only keys whose resolved value changes are returned.
    """
    params_path = Path(params_path)
    before = load_config(params_path)
    if not overrides:
        return {}
    strings = override_strings(overrides)
    after = load_config(params_path, strings)
    changed = diff(to_dict(before), to_dict(after))

    original = params_path.read_text()
    yaml = YAML()  # round-trip mode: comments and layout are kept
    yaml.preserve_quotes = True
    document = yaml.load(original)
    if document is None:
        document = CommentedMap()
    for text in strings:
        key, value = parse_override(text)
        _set_dotted(document, key, value)
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    if buffer.getvalue() == original:
        return changed
    atomic_write_text(params_path, buffer.getvalue())

    try:
        written = load_config(params_path)
    except ConfigError:
        atomic_write_text(params_path, original)
        raise
    if experiment_id(written) != experiment_id(after):
        atomic_write_text(params_path, original)
        keys = ", ".join(sorted(diff(to_dict(written), to_dict(after))))
        raise ConfigError(f"{params_path}: overrides did not round-trip through YAML ({keys}); file left unchanged")
    return changed


def _set_dotted(document: CommentedMap, key: str, value: Any) -> None:
    """``document[a][b][c] = value`` for ``a.b.c``, creating sections that params.yaml lacks."""
    node = document
    for part in key.split(".")[:-1]:
        if not isinstance(node.get(part), Mapping):
            node[part] = CommentedMap()
        node = node[part]
    node[key.split(".")[-1]] = value

"""The resolved config as plain data: nested and flat (dotted) forms, the experiment id, the
training fingerprint that decides whether a checkpoint may be resumed, and the saved file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from trainflow.config_sections import NON_TRAINING_SECTIONS, RESUMABLE_KEYS, SHIPPING_SECTIONS, Config
from trainflow.params_file import set_dotted


def to_dict(config: Any) -> dict[str, Any]:
    """The config as nested plain data (tuples become lists), ready for JSON or YAML."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``. Lists are values, not sections."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``; the inverse of :func:`flatten`."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        set_dotted(nested, key, value)
    return nested


def _digest(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def experiment_dict(config: Config) -> dict[str, Any]:
    """The config as nested plain data without ``package``, ``upload`` and ``retrain``: they say
    what is shipped, where, and when it is accepted, not what is computed. It is what the id
    hashes and what model files and checkpoints store, so their bytes depend on the experiment
    alone (moving the upload target keeps the id and the weights file)."""
    return {key: value for key, value in to_dict(config).items() if key not in SHIPPING_SECTIONS}


def experiment_id(config: Config) -> str:
    """A short hash of the resolved experiment (:func:`experiment_dict`): same experiment, same
    id, on any machine."""
    return _digest(experiment_dict(config))


def training_fingerprint(config: Config) -> str:
    """A hash of what determines the trained weights, except the keys a resume may raise.

    A checkpoint is resumed only when its fingerprint matches the current config's.
    """
    flat = flatten(to_dict(config))
    kept = {
        key: value
        for key, value in flat.items()
        if key not in RESUMABLE_KEYS and key.split(".")[0] not in NON_TRAINING_SECTIONS
    }
    return _digest(kept)


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Flat keys whose values differ between two nested configs: ``{key: (old, new)}``."""
    a, b = flatten(old), flatten(new)
    return {key: (a.get(key), b.get(key)) for key in sorted(a.keys() | b.keys()) if a.get(key) != b.get(key)}


def save_resolved(config: Config, path: str | Path, runtime: Mapping[str, Any] | None = None) -> None:
    """Write the resolved experiment (with its id) as YAML, atomically.

    Like the id, it leaves out ``package``, ``upload`` and ``retrain``, so a stage's outputs depend only on
    the params that stage declares in dvc.yaml. ``runtime`` (torch version, CPU kernels,
    threads: see trainflow.runtime) is recorded under its own key, outside the experiment.
    """
    from trainflow.io import atomic_write_text

    data = {
        "experiment_id": experiment_id(config),
        **({"runtime": dict(runtime)} if runtime else {}),
        **experiment_dict(config),
    }
    atomic_write_text(Path(path), yaml.safe_dump(data, sort_keys=False))


def names_in(items: Iterable[str]) -> str:
    return ", ".join(sorted(items))

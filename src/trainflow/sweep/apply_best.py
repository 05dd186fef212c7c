"""``trainflow sweep --apply-best``: write the best trial's values into params.yaml.

The file is edited line by line, so its comments, order and layout stay as they are: only the
value after ``key:`` changes on the line of each dotted key (its trailing comment is kept). A
key that params.yaml does not spell out (it takes its default) is refused with what to add.
The result is validated as every params.yaml is before it replaces the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from trainflow.errors import ConfigError

KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")


def _yaml_value(value: Any) -> str:
    """A value in YAML flow style (JSON is valid YAML): ``0.003``, ``[64, 64]``, ``adam``."""
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z_][\w./-]*", value) and value not in ("true", "false", "null"):
        return value
    return json.dumps(value, separators=(", ", ": "))


def _split_comment(rest: str) -> tuple[str, str]:
    """``" 0.001   # note"`` -> ``(" 0.001", "   # note")`` (a ``#`` inside quotes is data)."""
    quote = None
    for index, char in enumerate(rest):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or rest[index - 1].isspace()):
            start = len(rest[:index].rstrip())
            return rest[:start], rest[start:]
    return rest.rstrip(), ""


def set_values(text: str, values: dict[str, Any], source: str = "params.yaml") -> str:
    """``text`` with the value of each dotted key of ``values`` replaced in place."""
    lines = text.splitlines(keepends=True)
    stack: list[tuple[int, str]] = []
    found: set[str] = set()
    for index, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith(("#", "-")):
            continue
        match = KEY_LINE.match(line.rstrip("\n"))
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        dotted = ".".join(key for _, key in stack)
        if dotted in values:
            value, comment = _split_comment(match["rest"])
            if not value.strip():
                raise ConfigError(f"{source}: {dotted} is a section, not a value")
            new = f" {_yaml_value(values[dotted])}"
            pad = " " * max(1, len(value) - len(new) + (len(comment) - len(comment.lstrip()))) if comment else ""
            ending = "\n" if line.endswith("\n") else ""
            lines[index] = f"{match['indent']}{match['key']}:{new}{pad}{comment.lstrip()}{ending}"
            found.add(dotted)
    if missing := sorted(set(values) - found):
        raise ConfigError(
            f"{source}: {missing[0]} is not written out in the file (it takes its default); "
            f"add it with its current value, then rerun --apply-best"
        )
    return "".join(lines)


def apply_best(params: Path, values: dict[str, Any]) -> str:
    """Write ``values`` into ``params`` (validated first); return the new experiment id."""
    from trainflow.config import experiment_id, load_config

    if not values:
        raise ConfigError("sweep: no complete trial yet; run `trainflow sweep` first")
    new_text = set_values(params.read_text(encoding="utf-8"), values, str(params))
    candidate = params.with_name(f".{params.name}.sweep-tmp")
    candidate.write_text(new_text, encoding="utf-8")
    try:
        config = load_config(candidate)
        candidate.replace(params)
    finally:
        candidate.unlink(missing_ok=True)
    return experiment_id(config)

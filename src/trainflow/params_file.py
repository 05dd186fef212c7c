"""Reading params.yaml and ``key.sub=value`` overrides into plain nested data.

``yaml.safe_load`` with bounds: a params file is a few kB of plain values, so an oversized
file, deep nesting or an alias bomb is refused with one line naming the file, before anything
walks the data. Overrides use the syntax of ``dvc exp run -S``; their values are YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trainflow.errors import ConfigError

MAX_PARAMS_BYTES = 1_000_000  # a params file is a few kB; this refuses a file that would stall loading
MAX_YAML_DEPTH = 100  # nesting of mappings and lists; deeper is a generated or hostile file
MAX_YAML_VALUES = 100_000  # values after expanding aliases (a "billion laughs" file expands to 10**9)


class YAMLLimitError(Exception):
    """A YAML document exceeds :data:`MAX_YAML_DEPTH` or :data:`MAX_YAML_VALUES`."""


class _LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses deep nesting and alias expansion past the limits.

    The composed node graph of nested anchors is small, but every consumer that walks the data
    (``json.dumps`` in :func:`resolve`, ``yaml.safe_dump``) expands each alias again; so the
    expanded size is counted on the node graph before any Python object is built. Nesting is
    bounded while composing, before Python's recursion limit is reached.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YAMLLimitError(f"nested more than {MAX_YAML_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, {}, set())
        return node


def _expanded_size(node: yaml.Node, seen: dict[int, tuple[int, int]], open_nodes: set[int]) -> tuple[int, int]:
    """``(values, depth)`` of ``node`` once every alias is expanded, memoised by node.

    Anchors come before their aliases, so a walk in document order meets each anchored node
    first where it is defined: the recursion is no deeper than the composed document.
    """
    if id(node) in seen:
        return seen[id(node)]
    if id(node) in open_nodes:
        raise YAMLLimitError("an alias refers to the collection that contains it (recursive anchor)")
    open_nodes.add(id(node))
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    measured = [_expanded_size(child, seen, open_nodes) for child in children]
    open_nodes.discard(id(node))
    size = 1 + sum(values for values, _ in measured)
    depth = 1 + max((child_depth for _, child_depth in measured), default=0)
    if size > MAX_YAML_VALUES:
        raise YAMLLimitError(
            f"holds more than {MAX_YAML_VALUES} values once aliases are expanded (nested anchors?); "
            "write the values out"
        )
    if depth > MAX_YAML_DEPTH:
        raise YAMLLimitError(f"aliases expand to more than {MAX_YAML_DEPTH} levels of nesting")
    seen[id(node)] = (size, depth)
    return size, depth


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with bounded nesting and alias expansion (:class:`YAMLLimitError`)."""
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_params(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; a missing, oversized or malformed file is a ConfigError."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder, not a params file; pass --params PATH/params.yaml")
        size = path.stat().st_size
        if size > MAX_PARAMS_BYTES:
            raise ConfigError(f"{path}: {size} bytes is too large for a params file (limit {MAX_PARAMS_BYTES})")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; create it or pass --params PATH") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start}); save it as UTF-8"
        ) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or type(error).__name__})") from None
    try:
        raw = load_yaml(text)
    except YAMLLimitError as error:
        raise ConfigError(f"{path}: refused: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: malformed YAML: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys to values, got {type(raw).__name__}")
    return raw


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.optimizer.lr=0.003"`` -> ``("train.optimizer.lr", 0.003)``; the value is YAML.

    A value that is not valid YAML is kept as a string; one past the nesting or alias limits
    of :func:`load_yaml` is refused.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. train.optimizer.lr=0.003")
    try:
        parsed = load_yaml(value) if value.strip() else ""
    except YAMLLimitError as error:
        raise ConfigError(f"override {key.strip()}: refused: {error}") from None
    except yaml.YAMLError:
        parsed = value
    return key.strip(), parsed


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``raw[a][b][c] = value`` for ``key = "a.b.c"``, creating mappings on the way."""
    node = raw
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[: depth + 1])}: is a value, not a section; cannot set {key}")
        node = child
    node[parts[-1]] = value

"""Typed experiment configuration: defaults < params.yaml < command-line overrides.

One frozen dataclass per section, validated by pydantic. Sections that pick a component by
name (``model.name: mlp``) are validated against the config class registered under that name,
so each model, optimizer, ... declares its own fields and defaults. Every error names the dotted
key at fault and what would be valid, and is raised before any work starts.

The resolved config converts to a nested or flat (dotted) dict and back; its hash is the
experiment id.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, InstanceOf, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.errors import ConfigError

STRICT = ConfigDict(extra="forbid")

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


@dataclass(frozen=True, config=STRICT)
class ComponentConfig:
    """Base of every registered component's config: ``name`` selects the component."""

    name: str


@dataclass(frozen=True, config=STRICT)
class DataConfig:
    """How the prepared data set is split (stratified by label, deterministic by ``seed``)."""

    val_fraction: Fraction = 0.15
    test_fraction: Fraction = 0.15

    @model_validator(mode="after")
    def _leaves_train_split(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 0.95:
            raise ValueError(
                f"val_fraction + test_fraction must be < 0.95 to leave a train split "
                f"(got {self.val_fraction} + {self.test_fraction})"
            )
        return self


@dataclass(frozen=True, config=STRICT)
class EarlyStoppingConfig:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs (0 = off)."""

    monitor: str = "val/loss"
    mode: Literal["min", "max"] = "min"
    patience: NonNegativeInt = 5
    min_delta: NonNegativeFloat = 0.0


@dataclass(frozen=True, config=STRICT)
class CheckpointConfig:
    """When to write checkpoints and which to keep (the best by ``monitor``, the last, every Nth)."""

    monitor: str = "val/accuracy"
    mode: Literal["min", "max"] = "max"
    every_n_epochs: NonNegativeInt = 1
    every_n_steps: NonNegativeInt = 0
    keep_last: PositiveInt = 2
    keep_every_n_epochs: NonNegativeInt = 0


@dataclass(frozen=True, config=STRICT)
class DistributedConfig:
    """DDP through torchrun. One process runs in-process with no distributed overhead."""

    nproc_per_node: PositiveInt | Literal["auto"] = 1
    nnodes: PositiveInt = 1
    node_rank: NonNegativeInt = 0
    rdzv_endpoint: str = "127.0.0.1:29400"
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    timeout_s: Annotated[float, Field(gt=0)] = 300.0
    max_restarts: NonNegativeInt = 0


def _component_default(registry_name: str, name: str, **fields: Any) -> Any:
    """A default_factory that builds the registered config class for ``name``."""

    def build() -> Any:
        import_builtins()
        entry = getattr(registry, registry_name).get(name)
        return entry.config_class(name=name, **fields)

    return dataclasses.field(default_factory=build)


@dataclass(frozen=True, config=STRICT)
class TrainConfig:
    """The training loop. ``batch_size`` is per process; the global batch is it times world size."""

    max_epochs: PositiveInt = 30
    batch_size: PositiveInt = 32
    optimizer: InstanceOf[ComponentConfig] = _component_default("optimizers", "adam")
    scheduler: InstanceOf[ComponentConfig] = _component_default("schedulers", "none")
    scheduler_interval: Literal["epoch", "step"] = "epoch"
    early_stopping: EarlyStoppingConfig = dataclasses.field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    grad_accum_steps: PositiveInt = 1
    clip_grad_norm: NonNegativeFloat = 0.0
    clip_grad_value: NonNegativeFloat = 0.0
    loader: Literal["memory", "dataloader"] = "memory"
    num_workers: NonNegativeInt = 0
    threads: NonNegativeInt = 1
    deterministic: bool = True
    compile: bool = False
    device: str = "auto"
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)


@dataclass(frozen=True, config=STRICT)
class UploadConfig:
    """Where result packages go: ``s3://bucket/prefix`` or a local ``file://`` folder."""

    target: str = "file://uploads"

    @model_validator(mode="after")
    def _known_scheme(self) -> UploadConfig:
        if not self.target.startswith(("s3://", "file://")):
            raise ValueError(f"target must start with s3:// or file:// (got {self.target!r})")
        return self


@dataclass(frozen=True, config=STRICT)
class RetrainConfig:
    """Acceptance rule for retraining: ``metric`` (a dotted key of metrics/eval.json) may drop
    by at most ``max_drop`` against the last accepted model (rise, for ``mode: min``)."""

    metric: str = "test.accuracy"
    mode: Literal["min", "max"] = "max"
    max_drop: NonNegativeFloat = 0.0


@dataclass(frozen=True, config=STRICT)
class Config:
    """The whole experiment. Every field has a default, so ``Config()`` is a valid experiment."""

    seed: NonNegativeInt = 42
    imports: tuple[str, ...] = ()
    dataset: InstanceOf[ComponentConfig] = _component_default("datasets", "digits")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    encoder: InstanceOf[ComponentConfig] = _component_default("encoders", "standard")
    model: InstanceOf[ComponentConfig] = _component_default("models", "mlp")
    loss: InstanceOf[ComponentConfig] = _component_default("losses", "cross_entropy")
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    metrics: tuple[str, ...] = ("accuracy", "f1_macro")
    loggers: tuple[str, ...] = ("tensorboard", "csv", "json")
    upload: UploadConfig = dataclasses.field(default_factory=UploadConfig)
    retrain: RetrainConfig = dataclasses.field(default_factory=RetrainConfig)


# Sections that select a registered component: dotted key -> (registry, default name).
COMPONENTS: dict[str, tuple[str, str]] = {
    "dataset": ("datasets", "digits"),
    "encoder": ("encoders", "standard"),
    "model": ("models", "mlp"),
    "loss": ("losses", "cross_entropy"),
    "train.optimizer": ("optimizers", "adam"),
    "train.scheduler": ("schedulers", "none"),
}
# Lists of registered names: dotted key -> registry.
NAME_LISTS: dict[str, str] = {"metrics": "metrics", "loggers": "loggers"}
# Keys that may change between an interrupted run and its resume (dwi_ml's new_max_epochs,
# new_patience), plus sections that do not affect the trained weights.
# The world size may change too: checkpoints hold no rank-specific state.
RESUMABLE_KEYS = (
    "train.max_epochs",
    "train.early_stopping.patience",
    *(f"train.distributed.{key}" for key in DistributedConfig.__dataclass_fields__),
)
SHIPPING_SECTIONS = ("upload", "retrain")
NON_TRAINING_SECTIONS = (*SHIPPING_SECTIONS, "metrics", "loggers")

BUILTIN_MODULES = (
    "trainflow.data.datasets",
    "trainflow.encoders",
    "trainflow.models",
    "trainflow.losses",
    "trainflow.optimizers",
    "trainflow.metrics",
    "trainflow.training.loggers",
)


def import_builtins() -> None:
    """Import the modules whose ``@register`` calls fill the registries with built-ins."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(params_path: str | Path = "params.yaml", overrides: Sequence[str] = ()) -> Config:
    """Defaults < ``params_path`` < ``overrides`` (``key.sub=value``, as ``dvc exp run -S``)."""
    raw = read_params(params_path)
    for override in overrides:
        key, value = parse_override(override)
        set_dotted(raw, key, value)
    return resolve(raw, source=str(params_path))


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


def resolve(raw: Mapping[str, Any], source: str = "params", plugins: bool = True) -> Config:
    """Validate a nested mapping into a :class:`Config`; errors name the dotted key.

    ``plugins=True`` imports the modules listed under ``imports:`` first. A config read from a
    model snapshot or checkpoint (a file that may come from anyone) is resolved with
    ``plugins=False``: it imports nothing and its components must already be registered, by the
    built-ins or by the ``imports:`` of the current params.yaml.
    """
    import_builtins()
    raw = json.loads(json.dumps(raw, default=str))  # a deep copy of plain data
    imports = raw.get("imports", [])
    if isinstance(imports, str) or not isinstance(imports, list):
        raise ConfigError(f"{source}: imports: must be a list of module names, got {imports!r}")
    if plugins:
        registry.import_plugins(imports)
    needs = "" if plugins else _plugin_hint(imports)
    fill_task_defaults(raw)
    for key, (registry_name, default_name) in COMPONENTS.items():
        _resolve_component(raw, key, getattr(registry, registry_name), default_name, source, needs)
    for key, registry_name in NAME_LISTS.items():
        names = raw.get(key)
        if names is None:
            continue
        if not isinstance(names, list):
            raise ConfigError(f"{source}: {key}: must be a list of names, got {names!r}")
        known = getattr(registry, registry_name)
        for name in names:
            if name not in known:
                raise ConfigError(f"{source}: " + registry.unknown_name_message(key, name, known.names()) + needs)
    try:
        return TypeAdapter(Config).validate_python(raw)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe(error, Config)}") from None


AUTO = "auto"
# What `auto` (or an absent key) means for each task: loss, metrics, best-checkpoint monitor.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {"loss": "cross_entropy", "metrics": ["accuracy", "f1_macro"]},
    "regression": {"loss": "mse", "metrics": ["mae", "rmse", "r2"]},
}
LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse")


def fill_task_defaults(raw: dict[str, Any]) -> None:
    """Replace ``auto`` (or absent) ``loss.name``, ``metrics`` and ``train.checkpoint.monitor``
    / ``mode`` in ``raw`` by the concrete defaults for the data set's task, in place.

    The task is ``dataset.task`` (classification when absent, as for digits). The monitor is
    ``val/accuracy`` (max) when accuracy is logged, else ``val/loss`` (min); an explicit monitor
    with ``mode: auto`` gets ``min`` for losses and errors, else ``max``. Explicit values win, and
    the resolved config holds only concrete names, so ``auto`` never changes an experiment id.
    A malformed section is left for its own validation to report.
    """
    dataset = raw.get("dataset")
    task = dataset.get("task", "classification") if isinstance(dataset, dict) else "classification"
    defaults = TASK_DEFAULTS.get(task) if isinstance(task, str) else None
    if defaults is None:
        return
    loss = raw.get("loss")
    if loss is None or loss == AUTO:
        raw["loss"] = {"name": defaults["loss"]}
    elif isinstance(loss, dict) and loss.get("name", AUTO) == AUTO:
        loss["name"] = defaults["loss"]
    if raw.get("metrics", AUTO) == AUTO:
        raw["metrics"] = list(defaults["metrics"])
    train = raw.setdefault("train", {})
    checkpoint = train.setdefault("checkpoint", {}) if isinstance(train, dict) else None
    if not isinstance(checkpoint, dict):
        return
    metrics = raw["metrics"] if isinstance(raw["metrics"], list) else []
    if checkpoint.get("monitor", AUTO) == AUTO:
        best = "val/accuracy" if "accuracy" in metrics else "val/loss"
        checkpoint["monitor"] = best
    monitor = checkpoint["monitor"]
    if checkpoint.get("mode", AUTO) == AUTO and isinstance(monitor, str):
        checkpoint["mode"] = "min" if monitor.rsplit("/", 1)[-1] in LOWER_IS_BETTER else "max"


def drop_other_components_keys(
    section: dict[str, Any], config_class: type, reg: registry.Registry[Any]
) -> dict[str, Any]:
    """``section`` without the keys that only other components of ``reg`` declare.

    params.yaml may keep the options of every model (``hidden_sizes`` of mlp, ``channels`` of
    cnn) so that ``dvc exp run -S model.name=cnn`` works without deleting the others by hand:
    the selected component ignores the keys another registered component owns. A key no
    component declares is still an error (a typo).
    """
    own = {f.name for f in dataclasses.fields(config_class)} if dataclasses.is_dataclass(config_class) else set()
    others: set[str] = set()
    for other in reg.names():
        cls = reg.get(other).config_class
        if cls is not config_class and dataclasses.is_dataclass(cls):
            others |= {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in section.items() if key in own or key not in others}


def _plugin_hint(imports: list[Any]) -> str:
    """The advice added when a stored config names a component no imported module registers."""
    if not imports:
        return "; this model needs the plug-in that registers it: list its module under `imports:` in params.yaml"
    modules = ", ".join(str(module) for module in imports)
    return f"; this model needs plug-in {modules}: list it under `imports:` in params.yaml"


def _resolve_component(
    raw: dict[str, Any], key: str, reg: registry.Registry[Any], default: str, source: str, needs: str = ""
) -> None:
    parts = key.split(".")
    parent = raw
    for part in parts[:-1]:
        parent = parent.setdefault(part, {})
        if not isinstance(parent, dict):
            return  # the section's own validation reports the wrong type
    section = parent.get(parts[-1], {})
    if isinstance(section, str):
        section = {"name": section}
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: {key}: must be a mapping with a 'name' key, got {section!r}")
    name = section.get("name", default)
    if not isinstance(name, str):
        raise ConfigError(f"{source}: {key}.name: must be a string; known: {', '.join(reg.names())}")
    if name not in reg:
        raise ConfigError(f"{source}: " + registry.unknown_name_message(f"{key}.name", name, reg.names()) + needs)
    entry = reg.get(name)
    section = drop_other_components_keys(section, entry.config_class, reg)
    try:
        parent[parts[-1]] = TypeAdapter(entry.config_class).validate_python({**section, "name": name})
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe(error, entry.config_class, prefix=key)}") from None


def describe(error: ValidationError, root: type, prefix: str = "") -> str:
    """One line per pydantic error, joined: ``key.sub: what is wrong (got X); valid: ...``."""
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        key = ".".join([prefix, *loc] if prefix else loc) or "(top level)"
        if item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            valid = _field_names(root, loc[:-1])
            close = difflib.get_close_matches(loc[-1], valid, n=1)
            hint = (
                f" (did you mean {'.'.join([*([prefix] if prefix else []), *loc[:-1], close[0]])!r}?)" if close else ""
            )
            lines.append(f"{key}: unknown key{hint}; valid keys here: {', '.join(valid)}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            got = f" (got {item['input']!r})" if "input" in item and not isinstance(item["input"], dict) else ""
            lines.append(f"{key}: {message}{got}")
    return "; ".join(lines)


def _field_names(cls: Any, loc: Sequence[str]) -> list[str]:
    """The field names of the dataclass reached from ``cls`` by following ``loc``."""
    for part in loc:
        if not dataclasses.is_dataclass(cls):
            return []
        field = {f.name: f for f in dataclasses.fields(cls)}.get(part)
        if field is None:
            return []
        cls = field.type if isinstance(field.type, type) else _resolve_annotation(cls, part)
    return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []


def _resolve_annotation(cls: type, name: str) -> Any:
    import typing

    hints = typing.get_type_hints(cls, include_extras=False)
    return hints.get(name)


# ---------------------------------------------------------------------------------------------
# Conversions, hashing, saving


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


def experiment_id(config: Config) -> str:
    """A short hash of the resolved config: same experiment, same id, on any machine.

    ``upload`` and ``retrain`` say where results are shipped and when they are accepted, not
    what is computed, so they are left out: moving the upload target keeps the id.
    """
    return _digest({key: value for key, value in to_dict(config).items() if key not in SHIPPING_SECTIONS})


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

    Like the id, it leaves out ``upload`` and ``retrain``, so a stage's outputs depend only on
    the params that stage declares in dvc.yaml. ``runtime`` (torch version, CPU kernels,
    threads: see trainflow.runtime) is recorded under its own key, outside the experiment.
    """
    from trainflow.io import atomic_write_text

    experiment = {key: value for key, value in to_dict(config).items() if key not in SHIPPING_SECTIONS}
    data = {"experiment_id": experiment_id(config), **({"runtime": dict(runtime)} if runtime else {}), **experiment}
    atomic_write_text(Path(path), yaml.safe_dump(data, sort_keys=False))


def names_in(items: Iterable[str]) -> str:
    return ", ".join(sorted(items))

"""Resolving raw params into a :class:`~trainflow.config_sections.Config`.

Task defaults fill ``auto`` first; each component section is validated against the config
class its name selects (keys that only other components of the same kind declare are
dropped, so params.yaml may keep every model's options); then the whole experiment is
validated and checked (:mod:`trainflow.config_checks`). Every error names the dotted key and
where its value came from (the params file or the command-line override).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from trainflow import registry
from trainflow.config_checks import Origin, check_experiment
from trainflow.config_sections import COMPONENTS, NAME_LISTS, Config
from trainflow.errors import ConfigError


def resolve(
    raw: Mapping[str, Any], source: str = "params", plugins: bool = True, overrides: Mapping[str, str] | None = None
) -> Config:
    """Validate a nested mapping into a :class:`Config`; errors name the dotted key.

    ``plugins=True`` imports the modules listed under ``imports:`` first. A config read from a
    model snapshot or checkpoint (a file that may come from anyone) is resolved with
    ``plugins=False``: it imports nothing and its components must already be registered, by the
    built-ins or by the ``imports:`` of the current params.yaml. ``overrides`` (dotted key ->
    ``key=value`` as given) makes an error in an overridden key name the override, not ``source``.
    """
    origin = Origin(source, dict(overrides or {}))
    raw = json.loads(json.dumps(raw, default=str))  # a deep copy of plain data
    imports = raw.get("imports", [])
    if isinstance(imports, str) or not isinstance(imports, list):
        raise origin.error("imports", f"must be a list of module names, got {imports!r}")
    if plugins:
        registry.import_plugins(imports)
    needs = "" if plugins else _plugin_hint(imports)
    fill_task_defaults(raw)
    for key, (registry_name, default_name) in COMPONENTS.items():
        _resolve_component(raw, key, getattr(registry, registry_name), default_name, origin, needs)
    for key, registry_name in NAME_LISTS.items():
        names = raw.get(key)
        if names is None:
            continue
        if not isinstance(names, list):
            raise origin.error(key, f"must be a list of names, got {names!r}")
        known = getattr(registry, registry_name)
        for name in names:
            if name not in known:
                raise ConfigError(
                    f"{origin.of(key)}: " + registry.unknown_name_message(key, name, known.names()) + needs
                )
    try:
        config = TypeAdapter(Config).validate_python(raw)
    except ValidationError as error:
        raise ConfigError(_located(error, Config, origin)) from None
    check_experiment(config, origin)
    return config


AUTO = "auto"
# What `auto` (or an absent key) means for each task: model, encoder, loss, metrics.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": {
        "model": "mlp",
        "encoder": "standard",
        "loss": "cross_entropy",
        "metrics": ["accuracy", "f1_macro"],
    },
    "regression": {"model": "mlp", "encoder": "standard", "loss": "mse", "metrics": ["mae", "rmse", "r2"]},
    "forecasting": {"model": "linear_window", "encoder": "forecast_standard", "loss": "masked_mse", "metrics": []},
}
LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse", "smape", "mase")
# What `retrain.metric: auto` judges a retrained model by, per task ({h} is the longest horizon).
RETRAIN_METRICS = {"classification": "test.accuracy", "regression": "test.rmse", "forecasting": "test.h{h}.model.mase"}


def raw_task(dataset: Any) -> Any:
    """The task of the raw ``dataset`` section: the selected dataset's own (digits classifies,
    co2 forecasts), or for a table its ``task`` key (classification when absent)."""
    if not isinstance(dataset, dict):
        return "classification"
    name = dataset.get("name", "digits")
    config_class = (
        registry.datasets.get(name).config_class if isinstance(name, str) and name in registry.datasets else None
    )
    fields = {f.name: f for f in dataclasses.fields(config_class)} if dataclasses.is_dataclass(config_class) else {}
    if "task" in fields:
        default = fields["task"].default
        return dataset.get("task", default if isinstance(default, str) else "classification")
    task = getattr(config_class, "task", None)
    return task if isinstance(task, str) else dataset.get("task", "classification")


def fill_task_defaults(raw: dict[str, Any]) -> None:
    """Replace ``auto`` (or absent) ``model.name``, ``encoder.name``, ``loss.name``, ``metrics``
    and ``train.checkpoint.monitor`` / ``mode`` in ``raw`` by the concrete defaults for the
    data set's task, in place.

    The task is the dataset's (:func:`raw_task`), so ``-S dataset.name=co2`` alone switches a
    digits experiment to forecasting. The monitor is ``val/accuracy`` (max) when accuracy is
    logged, else ``val/loss`` (min); an explicit monitor with ``mode: auto`` gets ``min`` for
    losses and errors, else ``max``. Explicit values win, and the resolved config holds only
    concrete names, so ``auto`` never changes an experiment id. A malformed section is left for
    its own validation to report.
    """
    task = raw_task(raw.get("dataset"))
    defaults = TASK_DEFAULTS.get(task) if isinstance(task, str) else None
    if defaults is None:
        return
    for key in ("model", "encoder", "loss"):
        section = raw.get(key)
        if section is None or section == AUTO:
            raw[key] = {"name": defaults[key]}
        elif isinstance(section, dict) and section.get("name", AUTO) == AUTO:
            section["name"] = defaults[key]
    if raw.get("metrics", AUTO) == AUTO:
        raw["metrics"] = list(defaults["metrics"])
    fill_retrain_defaults(raw, task)
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


def fill_retrain_defaults(raw: dict[str, Any], task: str) -> None:
    """``retrain.metric: auto`` (or absent) -> the task's metric (:data:`RETRAIN_METRICS`);
    ``retrain.mode: auto`` (or absent) -> ``min`` for a loss or error, else ``max``."""
    retrain = raw.setdefault("retrain", {})
    if not isinstance(retrain, dict):
        return
    if retrain.get("metric", AUTO) == AUTO:
        retrain["metric"] = RETRAIN_METRICS[task].format(h=_longest_horizon(raw.get("dataset")))
    metric = retrain["metric"]
    if retrain.get("mode", AUTO) == AUTO and isinstance(metric, str):
        retrain["mode"] = "min" if metric.rsplit(".", 1)[-1] in LOWER_IS_BETTER else "max"


def _longest_horizon(dataset: Any) -> Any:
    """The longest of the raw dataset's ``horizons`` (its config class's default when absent)."""
    horizons = dataset.get("horizons") if isinstance(dataset, dict) else None
    if horizons is None and isinstance(dataset, dict) and dataset.get("name") in registry.datasets:
        config_class = registry.datasets.get(dataset["name"]).config_class
        fields = {f.name: f for f in dataclasses.fields(config_class)} if dataclasses.is_dataclass(config_class) else {}
        horizons = fields["horizons"].default if "horizons" in fields else None
    try:
        return max(int(h) for h in horizons)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return "?"  # a malformed horizons key: its own validation reports it


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
    raw: dict[str, Any], key: str, reg: registry.Registry[Any], default: str, origin: Origin, needs: str = ""
) -> None:
    """Validate the section at dotted ``key`` in place against the config class its name selects."""
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
        raise origin.error(key, f"must be a mapping with a 'name' key, got {section!r}")
    name = section.get("name", default)
    if not isinstance(name, str):
        raise origin.error(f"{key}.name", f"must be a string; known: {', '.join(reg.names())}")
    if name not in reg:
        message = registry.unknown_name_message(f"{key}.name", name, reg.names())
        raise ConfigError(f"{origin.of(f'{key}.name')}: {message}{needs}")
    entry = reg.get(name)
    section = drop_other_components_keys(section, entry.config_class, reg)
    try:
        parent[parts[-1]] = TypeAdapter(entry.config_class).validate_python({**section, "name": name})
    except ValidationError as error:
        raise ConfigError(_located(error, entry.config_class, origin, prefix=key)) from None


def describe_items(error: ValidationError, root: type, prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted key, "key.sub: what is wrong (got X); valid: ...")`` per pydantic error."""
    items = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        key = ".".join([prefix, *loc] if prefix else loc) or "(top level)"
        if item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            valid = _field_names(root, loc[:-1])
            close = difflib.get_close_matches(loc[-1], valid, n=1)
            hint = (
                f" (did you mean {'.'.join([*([prefix] if prefix else []), *loc[:-1], close[0]])!r}?)" if close else ""
            )
            items.append((key, f"{key}: unknown key{hint}; valid keys here: {', '.join(valid)}"))
        else:
            message = item["msg"].removeprefix("Value error, ")
            got = f" (got {item['input']!r})" if "input" in item and not isinstance(item["input"], dict) else ""
            items.append((key, f"{key}: {message}{got}"))
    return items


def describe(error: ValidationError, root: type, prefix: str = "") -> str:
    """One line per pydantic error, joined: ``key.sub: what is wrong (got X); valid: ...``."""
    return "; ".join(line for _, line in describe_items(error, root, prefix))


def _located(error: ValidationError, root: type, origin: Origin, prefix: str = "") -> str:
    """:func:`describe`, each run of lines headed by where its keys came from (file or override)."""
    groups: list[tuple[str, list[str]]] = []
    for key, line in describe_items(error, root, prefix):
        where = origin.of(key)
        if groups and groups[-1][0] == where:
            groups[-1][1].append(line)
        else:
            groups.append((where, [line]))
    return "; ".join(f"{where}: {'; '.join(lines)}" for where, lines in groups)


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
    hints = typing.get_type_hints(cls, include_extras=False)
    return hints.get(name)

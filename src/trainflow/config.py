"""Typed experiment configuration: defaults < params.yaml < command-line overrides.

One frozen dataclass per section, validated by pydantic. Sections that pick a component by
name (``model.name: mlp``) are validated against the config class registered under that name,
so each model, optimizer, ... declares its own fields and defaults. Every error names the dotted
key at fault, where its value came from and what would be valid, and is raised before any work
starts. Validation needs the config classes only (pydantic, no torch): the implementations are
imported when a component is built.

This module is the public entry point; the work is split by job:

- :mod:`trainflow.params_file`: reading params.yaml (bounded YAML) and ``key=value`` overrides;
- :mod:`trainflow.config_sections`: the section dataclasses and :class:`Config`;
- :mod:`trainflow.config_resolve`: raw data -> validated :class:`Config`, errors by key;
- :mod:`trainflow.config_checks`: checks across sections, and the ones that depend on this machine;
- :mod:`trainflow.config_data`: nested/flat conversions, the experiment id, the saved file;
- :mod:`trainflow.components`: the built-in components' config classes and declarations;
  :mod:`trainflow.components.base` also holds the field types (``PositiveInt``, ``Fraction``).

A plug-in's config class needs :data:`STRICT` and :class:`ComponentConfig`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trainflow.components.base import STRICT, ComponentConfig
from trainflow.config_checks import Origin, check_machine
from trainflow.config_data import (
    diff,
    experiment_dict,
    experiment_id,
    flatten,
    names_in,
    save_resolved,
    to_dict,
    training_fingerprint,
    unflatten,
)
from trainflow.config_resolve import (
    AUTO,
    LOWER_IS_BETTER,
    TASK_DEFAULTS,
    describe,
    drop_other_components_keys,
    fill_task_defaults,
    resolve,
)
from trainflow.config_sections import (
    COMPONENTS,
    NAME_LISTS,
    NON_TRAINING_SECTIONS,
    RESUMABLE_KEYS,
    SHIPPING_SECTIONS,
    CheckpointConfig,
    Config,
    DataConfig,
    DistributedConfig,
    EarlyStoppingConfig,
    PackageConfig,
    RetrainConfig,
    TrainConfig,
    UploadConfig,
)
from trainflow.errors import ConfigError
from trainflow.params_file import (
    MAX_PARAMS_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_VALUES,
    YAMLLimitError,
    load_yaml,
    parse_override,
    read_params,
    set_dotted,
)

__all__ = [
    "AUTO",
    "COMPONENTS",
    "LOWER_IS_BETTER",
    "MAX_PARAMS_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_VALUES",
    "NAME_LISTS",
    "NON_TRAINING_SECTIONS",
    "RESUMABLE_KEYS",
    "SHIPPING_SECTIONS",
    "STRICT",
    "TASK_DEFAULTS",
    "CheckpointConfig",
    "ComponentConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "DistributedConfig",
    "EarlyStoppingConfig",
    "PackageConfig",
    "RetrainConfig",
    "TrainConfig",
    "UploadConfig",
    "YAMLLimitError",
    "describe",
    "diff",
    "drop_other_components_keys",
    "experiment_dict",
    "experiment_id",
    "fill_task_defaults",
    "flatten",
    "import_builtins",
    "load_config",
    "load_yaml",
    "names_in",
    "parse_override",
    "read_params",
    "resolve",
    "save_resolved",
    "set_dotted",
    "to_dict",
    "training_fingerprint",
    "unflatten",
]


def import_builtins() -> None:
    """Fill the registries with the built-in components (their config classes; the
    implementations are imported when built). Importing this module already does it."""
    import trainflow.components  # noqa: F401


def load_config(
    params_path: str | Path = "params.yaml", overrides: Sequence[str] = (), machine: bool = False
) -> Config:
    """Defaults < ``params_path`` < ``overrides`` (``key.sub=value``, as ``dvc exp run -S``).

    An error in a key an override set names the override, not the file. ``machine=True`` also
    refuses what this machine cannot run (fp16 or a CUDA device without CUDA), as a stage would.
    """
    raw = read_params(params_path)
    given: dict[str, str] = {}
    for override in overrides:
        key, value = parse_override(override)
        set_dotted(raw, key, value)
        given[key] = override.strip()
    config = resolve(raw, source=str(params_path), overrides=given)
    if machine:
        check_machine(config, Origin(str(params_path), given))
    return config

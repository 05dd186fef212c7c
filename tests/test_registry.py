"""Registries bind names to factories and config classes; unknown names list the known ones."""

from __future__ import annotations

import pytest
from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.config import STRICT, ComponentConfig, import_builtins
from trainflow.errors import ConfigError


@dataclass(frozen=True, config=STRICT)
class ThingConfig(ComponentConfig):
    name: str = "thing"
    size: int = 3


def test_register_get_build() -> None:
    things: registry.Registry[object] = registry.Registry("thing")

    @things.register("thing", ThingConfig)
    def make(config: ThingConfig, scale: int) -> int:
        return config.size * scale

    assert things.names() == ["thing"]
    assert "thing" in things
    assert things.get("thing").config_class is ThingConfig
    assert things.build(ThingConfig(size=4), scale=2) == 8


def test_unknown_name_lists_known_and_closest() -> None:
    things: registry.Registry[object] = registry.Registry("thing")
    things.register("alpha", ThingConfig)(object)
    things.register("beta", ThingConfig)(object)
    with pytest.raises(
        ConfigError, match=r"thing.name: unknown name 'alpah' \(did you mean 'alpha'\?\); known: alpha, beta"
    ):
        things.get("alpah")


def test_registering_a_name_twice_is_refused() -> None:
    things: registry.Registry[object] = registry.Registry("thing")
    things.register("a", ThingConfig)(int)
    with pytest.raises(ValueError, match="already registered"):
        things.register("a", ThingConfig)(float)


def test_builtins_fill_every_registry() -> None:
    import_builtins()
    expected = {
        registry.datasets: {"digits", "csv", "parquet"},
        registry.encoders: {"standard", "minmax", "identity"},
        registry.models: {"mlp", "cnn"},
        registry.losses: {"cross_entropy", "mse"},
        registry.optimizers: {"adam", "adamw", "sgd"},
        registry.schedulers: {"none", "cosine", "step", "onecycle", "linear_warmup"},
        registry.metrics: {"accuracy", "f1_macro", "mae", "rmse", "r2"},
        registry.loggers: {"tensorboard", "csv", "json", "npy"},
    }
    for reg, names in expected.items():
        assert names <= set(reg.names()), reg.kind

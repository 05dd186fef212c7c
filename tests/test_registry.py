"""Registries bind names to config classes and lazily imported factories; unknown names list the known ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


ALL_REGISTRIES = (
    registry.datasets,
    registry.encoders,
    registry.models,
    registry.losses,
    registry.optimizers,
    registry.schedulers,
    registry.metrics,
    registry.loggers,
)


def test_every_builtin_declaration_names_an_implementation_that_exists() -> None:
    import_builtins()
    for reg in ALL_REGISTRIES:
        for name in reg.names():
            entry = reg.get(name)
            assert callable(entry.factory), f"{reg.kind} {name}: {entry.target!r}"


def test_a_declared_component_is_imported_only_when_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lazy_thing_impl.py").write_text("def make(config, scale):\n    return config.size * scale\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    things: registry.Registry[object] = registry.Registry("thing")
    things.declare("thing", ThingConfig, "lazy_thing_impl:make", task="regression")
    entry = things.get("thing")
    assert entry.config_class is ThingConfig and entry.fits("regression") and not entry.fits("classification")
    assert "lazy_thing_impl" not in sys.modules
    assert things.build(ThingConfig(size=4), scale=3) == 12
    assert "lazy_thing_impl" in sys.modules
    monkeypatch.delitem(sys.modules, "lazy_thing_impl")


def test_register_accepts_its_own_declaration_and_refuses_another_factory() -> None:
    things: registry.Registry[object] = registry.Registry("thing")
    things.declare("thing", ThingConfig, f"{__name__}:ThingConfig")
    things.register("thing", ThingConfig)(ThingConfig)  # the declared implementation registering itself
    assert things.get("thing").factory is ThingConfig
    with pytest.raises(ValueError, match="already registered"):
        things.register("thing", ThingConfig)(dict)


def test_validating_params_imports_no_implementation() -> None:
    code = (
        "import sys\n"
        "from trainflow.config import resolve\n"
        "resolve({'model': {'name': 'cnn'}, 'train': {'optimizer': {'name': 'sgd'}, 'scheduler': 'cosine'},"
        " 'loggers': ['tensorboard', 'npy'], 'encoder': 'minmax'})\n"
        "heavy = {'torch', 'torchmetrics', 'pandas', 'pandera', 'numpy', 'tensorboardX'} & set(sys.modules)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('trainflow.') and not m.startswith(('trainflow.config',"
        " 'trainflow.components', 'trainflow.params_file', 'trainflow.registry', 'trainflow.errors')))\n"
        "print(sorted(heavy), loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[] []", result.stdout

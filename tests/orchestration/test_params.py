"""Flow overrides are validated first, then written into params.yaml keeping it otherwise intact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tasks.params import apply_overrides, override_strings
from trainflow.config import load_config
from trainflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    return path


def test_override_strings_keep_types() -> None:
    assert override_strings({"train.optimizer.lr": 0.003, "model.hidden_sizes": [8, 8], "train.compile": False}) == [
        "train.optimizer.lr=0.003",
        "model.hidden_sizes=[8, 8]",
        "train.compile=false",
    ]
    assert override_strings({"model.name": "mlp"}) == ["model.name=mlp"]


def test_overrides_mean_the_same_as_the_cli(params: Path) -> None:
    overrides = {"train.optimizer.lr": 0.003, "train.max_epochs": 2, "model.hidden_sizes": [16]}
    expected = load_config(params, override_strings(overrides))
    changed = apply_overrides(params, overrides)
    assert load_config(params) == expected
    assert changed["train.optimizer.lr"][1] == 0.003
    assert changed["train.max_epochs"][1] == 2
    assert set(changed) == {"train.optimizer.lr", "train.max_epochs", "model.hidden_sizes"}


def test_comments_and_other_keys_survive(params: Path) -> None:
    before = params.read_text()
    apply_overrides(params, {"train.optimizer.lr": 0.003})
    after = params.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert len(changed) == 1
    old_line, new_line = changed[0]
    assert "lr: 0.001" in old_line and "lr: 0.003" in new_line


def test_a_bad_override_fails_before_anything_is_written(params: Path) -> None:
    before = params.read_bytes()
    with pytest.raises(ConfigError, match=r"train\.optimizr"):
        apply_overrides(params, {"train.optimizr.lr": 0.003})
    with pytest.raises(ConfigError, match="max_epochs"):
        apply_overrides(params, {"train.max_epochs": 0})
    assert params.read_bytes() == before


def test_a_new_key_gets_its_section(params: Path) -> None:
    apply_overrides(params, {"loss.label_smoothing": 0.1, "train.scheduler.name": "cosine"})
    config = load_config(params)
    assert config.loss.label_smoothing == 0.1
    assert config.train.scheduler.name == "cosine"


def test_a_default_is_written_as_dvc_exp_run_does(params: Path) -> None:
    assert "compile" not in params.read_text()
    assert apply_overrides(params, {"train.compile": False}) == {}  # the same resolved config...
    assert "compile: false" in params.read_text()  # ...but DVC now sees the key


def test_no_change_writes_nothing(params: Path) -> None:
    before = params.stat().st_mtime_ns, params.read_bytes()
    assert apply_overrides(params, {}) == {}
    assert apply_overrides(params, {"train.optimizer.lr": 0.001}) == {}
    assert (params.stat().st_mtime_ns, params.read_bytes()) == before

"""Models: shapes, config validation, and snapshots that round trip without pickle."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from trainflow import registry
from trainflow.config import Config, resolve
from trainflow.data.datasets import DatasetInfo
from trainflow.errors import CheckpointError, ConfigError
from trainflow.models import CNNConfig, MLPConfig
from trainflow.models.snapshot import clean_state_dict, load_model_snapshot, save_model_snapshot

IMAGE_INFO = DatasetInfo(
    task="classification",
    feature_columns=tuple(f"pixel_{i}" for i in range(64)),
    label_column="label",
    classes=tuple(range(10)),
    image_shape=(1, 8, 8),
)


def test_mlp_shapes_and_dropout() -> None:
    model = registry.models.build(MLPConfig(hidden_sizes=(8, 4), dropout=0.5), in_features=64, num_outputs=10)
    assert model(torch.zeros(5, 64)).shape == (5, 10)
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 2


def test_cnn_reshapes_flat_rows_to_images() -> None:
    model = registry.models.build(CNNConfig(channels=(4,)), in_features=64, num_outputs=10, image_shape=(1, 8, 8))
    assert model(torch.zeros(3, 64)).shape == (3, 10)


def test_cnn_refuses_tabular_data() -> None:
    with pytest.raises(ConfigError, match=r"model\.name: cnn needs a data set of images"):
        registry.models.build(CNNConfig(), in_features=5, num_outputs=2, image_shape=None)


def test_snapshot_round_trip(tmp_path: Path) -> None:
    config = resolve({"model": {"name": "mlp", "hidden_sizes": [16]}})
    torch.manual_seed(0)
    model = registry.models.build(config.model, in_features=64, num_outputs=10)
    save_model_snapshot(tmp_path / "m.pt", model, config, IMAGE_INFO, epoch=3)
    loaded, snapshot = load_model_snapshot(tmp_path / "m.pt")
    assert snapshot["epoch"] == 3
    x = torch.randn(4, 64)
    assert torch.equal(loaded(x), model.eval()(x))


def test_snapshot_strips_wrapper_prefixes() -> None:
    state = {"module.layers.0.weight": torch.ones(1), "_orig_mod.module.b": torch.zeros(1)}
    assert set(clean_state_dict(state)) == {"layers.0.weight", "b"}


def test_snapshot_is_saved_identically_twice(tmp_path: Path) -> None:
    config = Config()
    torch.manual_seed(0)
    model = registry.models.build(config.model, in_features=64, num_outputs=10)
    save_model_snapshot(tmp_path / "a.pt", model, config, IMAGE_INFO)
    save_model_snapshot(tmp_path / "b.pt", model, config, IMAGE_INFO)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_snapshot_bytes_do_not_depend_on_the_shipping_sections(tmp_path: Path) -> None:
    """``dvc exp run -S upload.target=...`` re-runs no stage that writes a model, so a model file
    must be the same bytes whatever the upload target, export list or retrain rule."""
    torch.manual_seed(0)
    model = registry.models.build(Config().model, in_features=64, num_outputs=10)
    shipped = resolve(
        {"upload": {"target": "s3://bucket/x"}, "package": {"export": ["onnx"]}, "retrain": {"max_drop": 0.5}}
    )
    save_model_snapshot(tmp_path / "a.pt", model, Config(), IMAGE_INFO)
    save_model_snapshot(tmp_path / "b.pt", model, shipped, IMAGE_INFO)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    _, snapshot = load_model_snapshot(tmp_path / "b.pt")
    assert "upload" not in snapshot["config"] and "package" not in snapshot["config"]


class Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_snapshot_refuses_pickled_objects_and_garbage(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"format": "trainflow.model/1", "x": Exploit()}, evil, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(CheckpointError) as refused:
        load_model_snapshot(evil)
    assert str(refused.value) == (  # protocol 4 fails on its first opcode, before any global is named
        f"{evil}: refused to load this model snapshot: "
        "it holds pickled data other than tensors and plain data (Unsupported operand 149)"
    )
    torch.save({"format": "trainflow.model/1", "x": Exploit()}, evil)
    with pytest.raises(CheckpointError) as refused:
        load_model_snapshot(evil)
    assert str(refused.value) == (
        f"{evil}: refused to load this model snapshot: it names the global print, "
        "which is neither a tensor nor plain data; nothing in it was run"
    )
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a zip")
    with pytest.raises(CheckpointError, match=r"garbage\.pt: (refused to load this|unreadable) model snapshot"):
        load_model_snapshot(garbage)
    with pytest.raises(CheckpointError, match="not found; run the train stage"):
        load_model_snapshot(tmp_path / "missing.pt")

"""Loggers: CSV history for DVC plots, JSON summary for DVC metrics, .npy history, TensorBoard
event files (read back here with tensorboardX's protobufs), and the registry entries."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.training.conftest import build_trainer
from trainflow import registry
from trainflow.config import import_builtins, resolve
from trainflow.training.loggers import (
    CSVLogger,
    JSONLogger,
    Logger,
    MemoryLogger,
    NpyLogger,
    TensorBoardLogger,
    history_csv,
    nest,
)


def read_events(folder: Path) -> list[Any]:
    """Every Event in the TFRecord files under ``folder`` (length, crc, data, crc framing)."""
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            event = Event()
            event.ParseFromString(data[offset + 12 : offset + 12 + length])
            events.append(event)
            offset += 12 + length + 4
    return events


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                found.setdefault(value.tag, []).append((event.step, value.simple_value))
    return found


def run_with(tmp_path: Path, epochs: int = 3, **options: Any) -> Any:
    loggers = [CSVLogger(tmp_path / "history.csv"), JSONLogger(tmp_path / "train.json"), NpyLogger(tmp_path / "npy")]
    trainer = build_trainer(loggers=loggers, monitor="val/accuracy", mode="max", **options)
    trainer.fit(epochs)
    return trainer


def test_csv_has_one_row_per_epoch_with_dvc_friendly_columns(tmp_path: Path) -> None:
    trainer = run_with(tmp_path)
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "val_accuracy"]
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    assert [float(row["val_loss"]) for row in rows] == [r["val/loss"] for r in trainer.state.history]  # exact


def test_json_summary_holds_the_best_and_last_epoch(tmp_path: Path) -> None:
    trainer = run_with(tmp_path, test_loader=build_trainer().val_loader)
    summary = json.loads((tmp_path / "train.json").read_text())
    best = trainer.state.best_epoch
    assert summary["epochs"] == 3 and summary["best_epoch"] == best and summary["monitor"] == "val/accuracy"
    assert summary["best"]["val"]["accuracy"] == trainer.state.history[best - 1]["val/accuracy"]
    assert summary["last"]["train"]["loss"] == trainer.state.history[-1]["train/loss"]
    assert set(summary["test"]) == {"loss", "accuracy"}
    assert summary["stopped_early"] is False


def test_npy_history_has_one_array_per_metric(tmp_path: Path) -> None:
    trainer = run_with(tmp_path)
    assert sorted(p.name for p in (tmp_path / "npy").iterdir()) == [
        "epoch.npy",
        "train_loss.npy",
        "val_accuracy.npy",
        "val_loss.npy",
    ]
    losses = np.load(tmp_path / "npy" / "val_loss.npy")
    assert losses.dtype == np.float64 and losses.tolist() == [r["val/loss"] for r in trainer.state.history]


def test_two_identical_runs_write_identical_bytes(tmp_path: Path) -> None:
    run_with(tmp_path / "a")
    run_with(tmp_path / "b")
    for name in ("history.csv", "train.json", "npy/val_loss.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_tensorboard_scalars_and_hparams(tmp_path: Path) -> None:
    config = resolve({"model": {"name": "mlp", "hidden_sizes": [4]}})
    trainer = build_trainer(loggers=[TensorBoardLogger(tmp_path / "runs")], log_every_n_steps=2, config=config)
    trainer.fit(2)
    found = scalars(tmp_path / "runs")
    assert [step for step, _ in found["val/loss"]] == [6, 12]  # against the optimizer step
    assert found["val/loss"][-1][1] == pytest.approx(trainer.state.history[-1]["val/loss"])
    assert [step for step, _ in found["train/loss_step"]] == [2, 4, 6, 8, 10, 12]
    hparams = read_events(tmp_path / "runs" / "hparams")
    assert any(value.tag == "hparam/val/loss" for event in hparams for value in event.summary.value)
    plugin = [v for e in hparams for v in e.summary.value if v.tag == "_hparams_/session_start_info"]
    assert plugin and b"train.optimizer.lr" in plugin[0].metadata.plugin_data.content


def test_tensorboard_on_resume_purges_events_after_the_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    build_trainer(loggers=[TensorBoardLogger(tmp_path / "runs")], checkpoint_dir=folder).fit(2)
    resumed = build_trainer(loggers=[TensorBoardLogger(tmp_path / "runs")], checkpoint_dir=folder)
    resumed.fit(3, resume=True)
    starts = [e for e in read_events(tmp_path / "runs") if e.HasField("session_log") and e.step == 13]
    assert starts, "the resumed writer marks purge_step = checkpoint step + 1"
    assert [step for step, _ in scalars(tmp_path / "runs")["val/loss"]] == [6, 12, 18]


def test_loggers_write_nothing_when_a_finished_run_is_resumed(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    build_trainer(loggers=[CSVLogger(tmp_path / "h.csv")], checkpoint_dir=folder).fit(2)
    before = (tmp_path / "h.csv").stat().st_mtime_ns
    memory = MemoryLogger()
    build_trainer(loggers=[CSVLogger(tmp_path / "h.csv"), memory], checkpoint_dir=folder).fit(2, resume=True)
    assert (tmp_path / "h.csv").stat().st_mtime_ns == before
    assert (memory.started, memory.finished, memory.epochs) == (0, 0, [])


def test_duck_typed_logger_with_only_some_methods() -> None:
    class EpochsOnly:
        def __init__(self) -> None:
            self.epochs: list[int] = []

        def log_epoch(self, record: dict[str, float], trainer: Any) -> None:
            self.epochs.append(int(record["epoch"]))

    logger = EpochsOnly()
    build_trainer(loggers=[logger, Logger()]).fit(2)
    assert logger.epochs == [1, 2]


def test_registry_builds_each_logger_with_its_path(tmp_path: Path) -> None:
    import_builtins()
    assert {"tensorboard", "csv", "json", "npy"} <= set(registry.loggers.names())
    for name, cls in [("tensorboard", TensorBoardLogger), ("csv", CSVLogger), ("json", JSONLogger), ("npy", NpyLogger)]:
        entry = registry.loggers.get(name)
        logger = registry.loggers.build(entry.config_class(name=name), path=tmp_path / name)
        assert isinstance(logger, cls)
    assert resolve({"loggers": ["npy", "csv"]}).loggers == ("npy", "csv")


def test_helpers() -> None:
    assert nest({"epoch": 3, "val/loss": 1.5, "val/accuracy": 0.5}) == {
        "epoch": 3,
        "val": {"loss": 1.5, "accuracy": 0.5},
    }
    text = history_csv([{"epoch": 1, "train/loss": 0.5}, {"epoch": 2, "train/loss": 0.25, "val/loss": 0.1}])
    assert text == "epoch,train_loss,val_loss\n1,0.5,\n2,0.25,0.1\n"

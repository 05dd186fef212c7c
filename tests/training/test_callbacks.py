"""Built-in callbacks: early stopping, LR and gradient-norm monitors, time budget, max batches,
and the checkpoint callback's schedule and retention."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.training.conftest import assert_same_weights, build_trainer, weights
from trainflow.errors import ConfigError
from trainflow.training.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    GradNormMonitor,
    LRMonitor,
    MaxBatchesPerEpoch,
    TimeBudget,
)
from trainflow.training.checkpoint import list_checkpoints, parse_name
from trainflow.training.loggers import MemoryLogger
from trainflow.training.trainer import Trainer


class Scripted(Callback):
    """Adds ``val/score`` = ``scores[epoch - 1]`` to each epoch's validation metrics."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        metrics["val/score"] = self.scores[trainer.state.epoch]


SCORES = [1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0]


def positions(folder: Path) -> list[tuple[int, int, int]]:
    return [parse_name(path.name) for path in list_checkpoints(folder)]  # type: ignore[misc]


# --- early stopping -------------------------------------------------------------------------------


def test_early_stopping_stops_after_patience_epochs_without_improvement() -> None:
    stopper = EarlyStopping("val/score", "max", patience=2)
    trainer = build_trainer(callbacks=[Scripted(SCORES), stopper])
    trainer.fit(8)
    assert trainer.state.epoch == 4  # best at 2, no better at 3 and 4
    assert trainer.stopped_early and "has not improved for 2 epoch(s)" in (trainer.stop_reason or "")
    assert (stopper.best, stopper.best_epoch, stopper.wait) == (2.0, 2, 2)


def test_early_stopping_min_delta_and_mode() -> None:
    rising = [1.0, 1.05, 1.1, 1.15, 1.2, 1.25]
    trainer = build_trainer(callbacks=[Scripted(rising), EarlyStopping("val/score", "max", patience=2, min_delta=0.1)])
    trainer.fit(6)
    assert trainer.state.epoch == 3  # +0.05 per epoch is no improvement at min_delta 0.1
    trainer = build_trainer(callbacks=[Scripted(rising), EarlyStopping("val/score", "max", patience=2)])
    trainer.fit(6)
    assert trainer.state.epoch == 6
    trainer = build_trainer(callbacks=[Scripted(rising), EarlyStopping("val/score", "min", patience=2)])
    trainer.fit(6)
    assert trainer.state.epoch == 3  # rising is getting worse for mode=min


def test_early_stopping_on_a_metric_the_run_does_not_compute_names_the_available_ones() -> None:
    trainer = build_trainer(callbacks=[EarlyStopping("val/f1", "max")])
    with pytest.raises(ConfigError, match=r"'val/f1' is not a metric.*val/accuracy"):
        trainer.fit(1)


def test_nan_loss_stops_at_once_without_a_further_checkpoint(tmp_path: Path) -> None:
    class BlowUp(Callback):
        def on_batch_start(self, trainer: Trainer, batch: Any) -> None:
            if trainer.state.global_step == 8:
                batch[0][0, 0] = float("nan")

    folder = tmp_path / "ck"
    trainer = build_trainer(
        callbacks=[BlowUp(), EarlyStopping(patience=5), Checkpoint(folder, every_n_steps=1, keep_last=20)]
    )
    trainer.fit(5)
    assert trainer.state.epoch == 1 and trainer.state.global_step == 9
    assert "diverged" in (trainer.stop_reason or "") and not trainer.stop_resumable
    assert positions(folder)[-1] == (1, 2, 8)  # the step before the NaN batch

    unchecked = build_trainer(callbacks=[BlowUp(), EarlyStopping(patience=5, check_finite=False)])
    unchecked.fit(2)
    assert unchecked.state.epoch == 2


def test_raising_patience_on_resume_continues_exactly_as_if_it_had_been_set_from_the_start(tmp_path: Path) -> None:
    reference = build_trainer(callbacks=[Scripted(SCORES), EarlyStopping("val/score", "max", patience=3)])
    reference.fit(8)
    assert reference.state.epoch == 8

    folder = tmp_path / "ck"
    stopped = build_trainer(callbacks=[Scripted(SCORES), EarlyStopping("val/score", "max", 2), Checkpoint(folder)])
    stopped.fit(8)
    assert stopped.state.epoch == 4

    resumed = build_trainer(
        seed=3, callbacks=[Scripted(SCORES), EarlyStopping("val/score", "max", 3), Checkpoint(folder)]
    )
    resumed.fit(8, resume=True)
    assert resumed.epochs_run == 4
    assert_same_weights(weights(resumed), weights(reference))


def test_resuming_an_early_stopped_run_with_the_same_patience_says_so(tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "ck"
    build_trainer(callbacks=[Scripted(SCORES), EarlyStopping("val/score", "max", 2), Checkpoint(folder)]).fit(8)
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    capsys.readouterr()
    again = build_trainer(callbacks=[Scripted(SCORES), EarlyStopping("val/score", "max", 2), Checkpoint(folder)])
    again.fit(8, resume=True)
    assert "early stopping already ended this run" in capsys.readouterr().out
    assert again.epochs_run == 0
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == files


# --- monitors ----------------------------------------------------------------------------------


def test_lr_monitor_logs_the_learning_rate_per_epoch_and_per_step() -> None:
    logger = MemoryLogger()
    trainer = build_trainer(lr=0.1, loggers=[logger], callbacks=[LRMonitor()])
    trainer.scheduler = torch.optim.lr_scheduler.StepLR(trainer.optimizer, step_size=1, gamma=0.5)
    trainer.fit(3)
    assert [(step, value) for step, name, value in logger.scalars if name == "lr"] == [
        (0, 0.1),
        (6, 0.05),
        (12, 0.025),
    ]
    logger = MemoryLogger()
    build_trainer(loggers=[logger], callbacks=[LRMonitor(every_n_steps=2)]).fit(1)
    assert [step for step, name, _ in logger.scalars if name == "lr"] == [0, 2, 4, 6]


def test_grad_norm_monitor_logs_before_and_after_clipping_every_n_steps() -> None:
    logger = MemoryLogger()
    build_trainer(clip_grad_norm=0.05, loggers=[logger], callbacks=[GradNormMonitor(every_n_steps=3)]).fit(1)
    before = [(step, value) for step, name, value in logger.scalars if name == "grad_norm/before_clip"]
    after = [(step, value) for step, name, value in logger.scalars if name == "grad_norm/after_clip"]
    assert [step for step, _ in before] == [step for step, _ in after] == [3, 6]
    assert all(b > 0.05 and a <= 0.05 * (1 + 1e-5) for (_, b), (_, a) in zip(before, after, strict=True))


# --- time budget and max batches -------------------------------------------------------------------


def ticking(start: float = 0.0) -> Iterator[float]:
    value = start
    while True:
        yield value
        value += 1.0


def test_time_budget_stops_mid_epoch_with_a_resumable_checkpoint(tmp_path: Path) -> None:
    reference = build_trainer()
    reference.fit(3)

    folder = tmp_path / "ck"
    clock = ticking()
    budget = TimeBudget(8.5, clock=lambda: next(clock))  # one tick at the start, one per batch
    stopped = build_trainer(callbacks=[budget, Checkpoint(folder)])
    stopped.fit(3)
    assert stopped.position == (1, 3, 9) and stopped.stopped_mid_epoch
    assert "time budget" in (stopped.stop_reason or "")
    assert positions(folder)[-1] == (1, 3, 9)

    resumed = build_trainer(seed=4, callbacks=[TimeBudget(1e9), Checkpoint(folder)])
    resumed.fit(3, resume=True)
    assert_same_weights(weights(resumed), weights(reference))
    assert resumed.state.history == reference.state.history


def test_max_batches_per_epoch_ends_each_epoch_early() -> None:
    trainer = build_trainer(callbacks=[MaxBatchesPerEpoch(2)])
    trainer.fit(3)
    assert trainer.state.global_step == 6 and len(trainer.state.history) == 3
    assert "val/loss" in trainer.state.history[-1]


# --- checkpoint schedule and retention --------------------------------------------------------------


def test_checkpoint_every_n_epochs_keeps_the_last_k(tmp_path: Path) -> None:
    build_trainer(callbacks=[Checkpoint(tmp_path, every_n_epochs=2, keep_last=2, keep_best=0)]).fit(5)
    assert positions(tmp_path) == [(4, 0, 24), (5, 0, 30)]  # epoch 2 pruned; 5 is the last epoch


def test_checkpoint_every_n_steps_mid_epoch(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path, every_n_epochs=0, every_n_steps=4, keep_last=10, keep_best=0)
    build_trainer(callbacks=[checkpoint]).fit(2)
    # step 12 ends the last batch (1, 6, 12); the last epoch's end (2, 0, 12) is written too
    assert positions(tmp_path) == [(0, 4, 4), (1, 2, 8), (1, 6, 12), (2, 0, 12)]


def test_checkpoint_keeps_the_best_k_and_every_nth_epoch(tmp_path: Path) -> None:
    scores = [5.0, 1.0, 4.0, 2.0, 3.0, 0.0, 0.5, 0.2]
    checkpoint = Checkpoint(tmp_path, keep_last=1, keep_best=2, keep_every_n_epochs=4)
    trainer = build_trainer(callbacks=[Scripted(scores), checkpoint], monitor="val/score", mode="max")
    trainer.fit(8)
    epochs = [epoch for epoch, _, _ in positions(tmp_path)]
    assert epochs == [1, 3, 4, 8]  # best two (5.0 at 1, 4.0 at 3), every 4th (4, 8), last (8)
    assert checkpoint.best_path is not None and checkpoint.best_path.name.startswith("ckpt-e0001-")
    assert trainer.state.best_epoch == 1


def test_checkpoint_is_written_once_per_position(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path, every_n_steps=6, keep_last=10, background=False)
    build_trainer(callbacks=[checkpoint]).fit(2)
    assert checkpoint.saved == [
        "ckpt-e0000-b000006-s00000006.pt",
        "ckpt-e0001-b000000-s00000006.pt",
        "ckpt-e0001-b000006-s00000012.pt",
        "ckpt-e0002-b000000-s00000012.pt",
    ]
    trainer = build_trainer(callbacks=[Checkpoint(tmp_path)])
    trainer.fit(2, resume=True)
    assert trainer.callbacks[0].saved == []  # resumed at the end: nothing new to write


def test_keep_last_must_keep_something(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep_last"):
        Checkpoint(tmp_path, keep_last=0)


class CrashOnFirstBatch(Callback):
    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        raise RuntimeError("crash before the first checkpoint")


def test_a_fresh_start_deletes_the_earlier_run_only_after_its_own_first_checkpoint(tmp_path: Path) -> None:
    build_trainer(callbacks=[Checkpoint(tmp_path, keep_last=2, background=False)]).fit(2)
    earlier = positions(tmp_path)
    assert earlier
    with pytest.raises(RuntimeError, match="crash before"):
        build_trainer(seed=1, callbacks=[CrashOnFirstBatch(), Checkpoint(tmp_path, background=False)]).fit(2)
    assert positions(tmp_path) == [] and positions(tmp_path / ".previous") == earlier, "still on disk"

    build_trainer(seed=1, callbacks=[Checkpoint(tmp_path, keep_last=2, background=False)]).fit(2)
    assert not (tmp_path / ".previous").exists() and positions(tmp_path) == earlier  # same positions, new run

"""Exact resume in one process: interrupt a run anywhere, resume it, get the uninterrupted run's bits.

The interruption is an exception raised from a callback at a chosen batch (the SIGKILL tests in
test_kill.py do the same with real processes). The resumed trainer is built from different
seeds, so everything that matters must come from the checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.training.conftest import assert_same_weights, build_trainer, weights
from trainflow.training.callbacks import Callback, Checkpoint
from trainflow.training.checkpoint import list_checkpoints
from trainflow.training.trainer import Trainer

EPOCHS = 4  # 6 batches of 16 per epoch: 24 batches in all


class Crash(Exception):
    pass


class CrashAt(Callback):
    """Raises after the ``batch``-th batch of the run (1-based, counted over epochs)."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.seen = 0

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        self.seen += 1
        if self.seen == self.batch:
            raise Crash


def run(folder: Path, crash_at: int | None = None, seed: int = 0, **options: Any) -> Trainer:
    every_n_steps = options.pop("every_n_steps", 1)
    callbacks = [Checkpoint(folder, every_n_steps=every_n_steps, keep_last=3)]
    if crash_at is not None:
        callbacks.append(CrashAt(crash_at))
    trainer = build_trainer(seed=seed, callbacks=callbacks, **options)
    trainer.fit(EPOCHS, resume=True)
    return trainer


@pytest.mark.parametrize(
    ("loader", "options"),
    [
        ("memory", {}),
        ("dataloader", {}),  # shuffles from the global RNG: the epoch-start RNG state matters
        ("dataloader", {"grad_accum_steps": 2, "every_n_steps": 2}),
    ],
)
def test_resume_mid_epoch_is_bit_identical(tmp_path: Path, loader: str, options: dict[str, Any]) -> None:
    reference = run(tmp_path / "reference", loader=loader, **options)

    folder = tmp_path / "interrupted"
    with pytest.raises(Crash):  # in epoch 2 (batch 9 of 24); the newest checkpoint is after batch 8
        run(folder, crash_at=9, loader=loader, **options)
    with pytest.raises(Crash):  # resumed, then stopped in epoch 3 (batch 17 of 24)
        run(folder, crash_at=9, seed=123, loader=loader, **options)
    resumed = run(folder, seed=456, loader=loader, **options)

    assert_same_weights(weights(resumed), weights(reference))
    assert resumed.state.history == reference.state.history
    assert resumed.optimizer.state_dict()["state"][0]["exp_avg"].equal(
        reference.optimizer.state_dict()["state"][0]["exp_avg"]
    )


def test_resume_with_step_scheduler_and_clipping(tmp_path: Path) -> None:
    def options() -> dict[str, Any]:
        return {"clip_grad_norm": 0.5}

    def make(folder: Path, crash_at: int | None, seed: int) -> Trainer:
        torch.manual_seed(seed)
        callbacks: list[Any] = [Checkpoint(folder, every_n_steps=1)]
        if crash_at:
            callbacks.append(CrashAt(crash_at))
        trainer = build_trainer(seed=seed, callbacks=callbacks, **options())
        trainer.scheduler = torch.optim.lr_scheduler.StepLR(trainer.optimizer, step_size=5, gamma=0.5)
        trainer.scheduler_interval = "step"
        return trainer

    reference = make(tmp_path / "a", None, 0)
    reference.fit(EPOCHS)
    with pytest.raises(Crash):
        make(tmp_path / "b", 11, 0).fit(EPOCHS, resume=True)
    resumed = make(tmp_path / "b", None, 99)
    resumed.fit(EPOCHS, resume=True)
    assert_same_weights(weights(resumed), weights(reference))
    assert resumed.optimizer.param_groups[0]["lr"] == reference.optimizer.param_groups[0]["lr"]


def test_without_the_epoch_start_rng_the_resume_would_differ(tmp_path: Path) -> None:
    """Guards the test above: resuming mid-epoch without replaying the shuffle gives other weights."""
    reference = run(tmp_path / "reference", loader="dataloader")
    folder = tmp_path / "interrupted"
    with pytest.raises(Crash):
        run(folder, crash_at=9, loader="dataloader")
    trainer = build_trainer(seed=5, loader="dataloader", callbacks=[Checkpoint(folder, every_n_steps=1)])
    trainer.resume()
    assert trainer._resume_epoch is not None
    trainer._resume_epoch["epoch_start"] = trainer._resume_epoch["current"]  # forget the epoch-start state
    trainer.fit(EPOCHS)
    got, expected = weights(trainer), weights(reference)
    assert not all(torch.equal(got[key], expected[key]) for key in expected)


def test_resume_continues_from_the_newest_checkpoint_and_reports_it(tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "ck"
    with pytest.raises(Crash):
        run(folder, crash_at=10)
    newest = list_checkpoints(folder)[-1]
    trainer = build_trainer(callbacks=[Checkpoint(folder, every_n_steps=1)])
    assert trainer.resume() is True
    assert trainer.resumed_from == newest
    assert trainer.position == (1, 3, 9)
    assert f"resumed from {newest}" in capsys.readouterr().out


def test_fresh_run_clears_an_earlier_runs_checkpoints(tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "ck"
    run(folder)
    assert list_checkpoints(folder)
    trainer = build_trainer(callbacks=[Checkpoint(folder)])
    trainer.fit(1)  # resume=False: a fresh run
    assert [p.name for p in list_checkpoints(folder)] == ["ckpt-e0001-b000000-s00000006.pt"]
    assert "set aside 3 checkpoint(s) of an earlier run" in capsys.readouterr().out
    assert not (folder / ".previous").exists()  # deleted once the new run's first checkpoint was written


def test_raising_max_epochs_on_resume_continues_exactly(tmp_path: Path) -> None:
    reference = build_trainer(checkpoint_dir=tmp_path / "a")
    reference.fit(4)
    short = build_trainer(checkpoint_dir=tmp_path / "b")
    short.fit(2)
    longer = build_trainer(seed=9, checkpoint_dir=tmp_path / "b")
    longer.fit(4, resume=True)
    assert longer.epochs_run == 2
    assert_same_weights(weights(longer), weights(reference))
    assert longer.state.history == reference.state.history


def test_resuming_a_finished_run_says_so_and_changes_nothing(tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "ck"
    done = build_trainer(checkpoint_dir=folder)
    done.fit(2)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    capsys.readouterr()

    again = build_trainer(seed=3, checkpoint_dir=folder)
    again.fit(2, resume=True)

    assert "training already finished: 2 of 2 epochs done" in capsys.readouterr().out
    assert again.epochs_run == 0
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before
    assert_same_weights(weights(again), weights(done))


def test_an_exception_waits_for_the_checkpoint_in_flight(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    with pytest.raises(Crash):
        run(folder, crash_at=6)  # the step-5 checkpoint may still be in flight
    assert not list(folder.glob(".*.tmp"))
    assert list_checkpoints(folder)[-1].name == "ckpt-e0000-b000005-s00000005.pt"

"""Hook filters (every=, once=) and the callbacks that use them instead of modulo checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.conftest import build_trainer
from trainflow.training.callbacks import LRMonitor
from trainflow.training.checkpoint import list_checkpoints
from trainflow.training.events import every, once


def test_every_fires_at_multiples_and_never_for_zero() -> None:
    assert [n for n in range(13) if every(4)(n)] == [4, 8, 12]
    assert not any(every(0)(n) for n in range(10)) and not every(0) and every(1)
    with pytest.raises(ValueError, match="every: must be >= 0"):
        every(-1)


def test_once_fires_at_one_count() -> None:
    assert [n for n in range(10) if once(3)(n)] == [3]
    with pytest.raises(ValueError, match="once: must be >= 1"):
        once(0)


def test_checkpoint_every_n_steps_follows_its_filter(tmp_path: Path) -> None:
    from trainflow.training.callbacks import Checkpoint

    checkpoint = Checkpoint(tmp_path, every_n_epochs=0, every_n_steps=4, keep_last=100, keep_best=0, background=False)
    build_trainer(callbacks=[checkpoint]).fit(2)  # 6 steps per epoch
    names = [path.name for path in list_checkpoints(tmp_path)]
    assert names == [  # every 4th optimizer step, and the end of the last epoch
        "ckpt-e0000-b000004-s00000004.pt",
        "ckpt-e0001-b000002-s00000008.pt",
        "ckpt-e0001-b000006-s00000012.pt",
        "ckpt-e0002-b000000-s00000012.pt",
    ]


class Recording:
    def __init__(self) -> None:
        self.steps: list[int] = []

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        self.steps.append(step)


def test_lr_monitor_logs_at_epoch_starts_and_every_nth_step() -> None:
    logger = Recording()
    build_trainer(callbacks=[LRMonitor(every_n_steps=5)], loggers=[logger]).fit(2)
    assert logger.steps == [0, 5, 6, 10]  # epoch 1 start, step 5, epoch 2 start (6), step 10

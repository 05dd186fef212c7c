"""The training process that test_kill.py SIGKILLs: a real run with checkpoints after every step.

:func:`train` runs in a child process started from a forkserver that has torch and trainflow
already imported (so a child starts in milliseconds). It reports every finished batch over a
pipe, so the parent can pick the moment to kill it, and resumes from the checkpoint folder on
every start. With ``hang_at_write`` the child's k-th checkpoint write stops halfway through the
temporary file and waits to be killed there.
"""

from __future__ import annotations

import io
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainflow.training import checkpoint as checkpoint_module
from trainflow.training.callbacks import Callback, Checkpoint
from trainflow.training.loaders import InMemoryLoader
from trainflow.training.loggers import CSVLogger, JSONLogger
from trainflow.training.trainer import Trainer

EPOCHS = 6
BATCHES_PER_EPOCH = 6  # 96 samples, batch 16


class Report(Callback):
    """Sends ``("batch", global_step)`` after each batch; optionally slows the run down."""

    def __init__(self, conn: Connection, pause: float) -> None:
        self.conn = conn
        self.pause = pause

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        self.conn.send(("batch", trainer.state.global_step))
        if self.pause:
            time.sleep(self.pause)


def hang_on_write(conn: Connection, at: int) -> None:
    """Make the ``at``-th checkpoint write of this process write half its bytes and wait forever."""
    original = checkpoint_module.write_data
    count = 0

    def write_data(file: IO[bytes], packed: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        if count != at:
            original(file, packed)
            return
        buffer = io.BytesIO()
        original(buffer, packed)
        data = buffer.getvalue()
        file.write(data[: len(data) // 2])
        file.flush()
        conn.send(("writing", count))
        time.sleep(600)

    checkpoint_module.write_data = write_data


def train(
    folder: str, out: str, loader_kind: str, conn: Connection, pause: float = 0.0, hang_at_write: int = 0
) -> None:
    """Train (resuming from ``folder``), then save the final weights to ``out``."""
    torch.set_num_threads(1)
    if hang_at_write:
        hang_on_write(conn, hang_at_write)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=generator)
    y = ((x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()).clamp(max=2)
    vx = torch.randn(48, 6, generator=generator)
    vy = ((vx[:, 0] > 0).long() + (vx[:, 1] > 0.5).long()).clamp(max=2)
    if loader_kind == "memory":
        loader: Any = InMemoryLoader(x, y, batch_size=16, shuffle=True, seed=5)
    else:  # shuffles from the global RNG, like most user code
        loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
    root = Path(folder)
    trainer = Trainer(
        model,
        loader,
        InMemoryLoader(vx, vy, batch_size=16),
        None,
        optimizer,
        nn.CrossEntropyLoss(),
        scheduler=torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.7),
        # fsync guards against power loss, not process death (the page cache outlives a SIGKILL);
        # leaving it out keeps a checkpoint after every step cheap on a busy test machine.
        callbacks=[Report(conn, pause), Checkpoint(root / "checkpoints", every_n_steps=1, keep_last=2, fsync=False)],
        loggers=[CSVLogger(root / "history.csv"), JSONLogger(root / "train.json")],
        progress="off",
        echo=lambda line: conn.send(("echo", line)),
    )
    trainer.fit(EPOCHS, resume=True)
    torch.save({key: value.clone() for key, value in model.state_dict().items()}, out)
    conn.send(("done", trainer.state.global_step))

"""A library user's training script that test_interrupt.py interrupts with a real SIGINT.

``python interrupt_driver.py FOLDER OUT`` trains (resuming from FOLDER/checkpoints), prints
``batch <step>`` after every batch, and saves the final weights to OUT.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainflow.training.callbacks import Callback, Checkpoint
from trainflow.training.loaders import InMemoryLoader
from trainflow.training.trainer import Trainer


class Report(Callback):
    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        print(f"batch {trainer.state.global_step}", flush=True)
        time.sleep(0.05)  # time for the test to send its signal mid-epoch


def main(folder: str, out: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=generator)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
    trainer = Trainer(
        model,
        InMemoryLoader(x, y, batch_size=16, shuffle=True, seed=3),
        InMemoryLoader(x[:32], y[:32], batch_size=16),
        None,
        optimizer,
        nn.CrossEntropyLoss(),
        callbacks=[Report(), Checkpoint(Path(folder) / "checkpoints", every_n_epochs=0, keep_last=2, fsync=False)],
        progress="off",
    )
    trainer.fit(4, resume=True)
    print(f"fit returned, interrupted={trainer.interrupted}", flush=True)
    torch.save({key: value.clone() for key, value in model.state_dict().items()}, out)


if __name__ == "__main__":
    main(*sys.argv[1:3])

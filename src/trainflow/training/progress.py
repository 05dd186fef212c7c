"""Progress display: a tqdm bar per epoch on a terminal, one plain line per epoch elsewhere.

On a TTY (and not under ``CI``) each epoch shows a bar over its batches, replaced at the end by a
summary line. In CI logs, pipes and files, bars would print garbage, so only the summary lines
are written. Timings appear here (stdout), never in the files a run writes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, Literal

import torch

from trainflow.numbers import format_metric
from trainflow.training.callbacks import Callback

if TYPE_CHECKING:
    from trainflow.training.trainer import Trainer

Mode = Literal["auto", "bar", "lines", "off"]


def is_interactive(stream: IO[str]) -> bool:
    """True on a terminal outside CI (``CI`` set to anything but ``false``/``0``)."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false")
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not ci


def epoch_line(record: Mapping[str, float], max_epochs: int, seconds: float | None = None) -> str:
    """``epoch 3/30  train/loss 0.2345  val/loss 0.1987  val/accuracy 0.9412  (0.41s)``."""
    parts = [f"epoch {int(record['epoch'])}/{max_epochs}"]
    parts += [f"{key} {format_metric(value)}" for key, value in record.items() if key != "epoch"]
    line = "  ".join(parts)
    return f"{line}  ({seconds:.2f}s)" if seconds is not None else line


class ProgressBar(Callback):
    """``mode``: ``auto`` (bar on a terminal, lines otherwise), ``bar``, ``lines`` or ``off``."""

    order = 110
    main_process_only = True

    def __init__(self, mode: Mode = "auto", stream: IO[str] | None = None) -> None:
        self.mode = mode
        self.stream = stream
        self.bar: Any = None
        self._started = 0.0
        self._resolved: Mode = "off"

    def on_fit_start(self, trainer: Trainer) -> None:
        stream = self.stream or sys.stderr
        self._resolved = ("bar" if is_interactive(stream) else "lines") if self.mode == "auto" else self.mode

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._started = time.perf_counter()
        if self._resolved == "bar":
            from tqdm.auto import tqdm

            try:
                total = len(trainer.train_loader)  # type: ignore[arg-type]
            except TypeError:
                total = None
            self.bar = tqdm(
                total=total,
                initial=trainer.state.batch_in_epoch,
                desc=f"epoch {trainer.state.epoch + 1}/{trainer.max_epochs}",
                leave=False,
                dynamic_ncols=True,
                file=self.stream or sys.stderr,
            )

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        line = epoch_line(record, trainer.max_epochs, time.perf_counter() - self._started)
        self._close()
        if self._resolved != "off":
            print(line, file=self.stream or sys.stdout, flush=True)

    def on_fit_end(self, trainer: Trainer) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

"""The :class:`Checkpoint` callback: when resumable checkpoints are written, and which are kept.

The files themselves (names, atomic background writes, safe loading) are
:mod:`trainflow.training.checkpoint`'s; what goes into one is
:func:`trainflow.training.train_state.capture`'s.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trainflow.io import write_error
from trainflow.training.checkpoint import (
    CheckpointWriter,
    checkpoint_name,
    delete_except,
    list_checkpoints,
    parse_name,
)
from trainflow.training.events import every
from trainflow.training.hooks import Callback, better

if TYPE_CHECKING:
    from trainflow.training.trainer import Trainer

PREVIOUS_RUN = ".previous"  # an earlier run's checkpoints, set aside by a fresh start


class Checkpoint(Callback):
    """Resumable checkpoints in ``folder`` (see :mod:`trainflow.training.checkpoint`).

    Writes one at the end of every ``every_n_epochs``-th epoch (0: none on schedule), every
    ``every_n_steps``-th optimizer step (0: none), whenever an epoch enters the best
    ``keep_best`` by the trainer's monitor, at the end of the last epoch or an early stop, and
    when a :class:`TimeBudget` stops the run mid-epoch (``save_on_stop``). After each write it
    deletes the files that are neither among the ``keep_last`` newest, nor the best
    ``keep_best``, nor at the end of an epoch divisible by ``keep_every_n_epochs``. The state is
    encoded at once; the write, fsync (``fsync``) and rename run on a background thread
    (``background``).
    """

    order = 100
    main_process_only = True

    def __init__(
        self,
        folder: str | Path,
        *,
        every_n_epochs: int = 1,
        every_n_steps: int = 0,
        keep_last: int = 2,
        keep_best: int = 1,
        keep_every_n_epochs: int = 0,
        save_on_stop: bool = True,
        background: bool = True,
        fsync: bool = True,
    ) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1 (the newest checkpoint is what a resume needs), got {keep_last}")
        self.folder = Path(folder)
        self.every_n_epochs = every_n_epochs
        self.every_n_steps = every_n_steps
        self.keep_last = keep_last
        self.keep_best = keep_best
        self.keep_every_n_epochs = keep_every_n_epochs
        self._on_epoch, self._on_step, self._keep = (
            every(every_n_epochs),
            every(every_n_steps),
            every(keep_every_n_epochs),
        )
        self.save_on_stop = save_on_stop
        self.writer = CheckpointWriter(background=background, fsync=fsync)
        self.best: list[list[Any]] = []  # [[value, file name], ...], best first
        self.last_saved: tuple[int, int, int] | None = None
        self.saved: list[str] = []  # names written by this process, in order
        self._previous: Path | None = None  # an earlier run's checkpoints, until this run has one

    @property
    def best_path(self) -> Path | None:
        """The checkpoint of the best epoch so far (None before the first validated epoch)."""
        return self.folder / self.best[0][1] if self.best else None

    def on_fit_start(self, trainer: Trainer) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(self.folder, error, "folder") from None
        self.last_saved = trainer.position
        if trainer.position == (0, 0, 0):  # a fresh run owns the folder: older files would confuse a resume
            self._set_aside_earlier_run(trainer)

    def _set_aside_earlier_run(self, trainer: Trainer) -> None:
        """Move an earlier run's checkpoints to ``.previous/``, out of a resume's sight; they are
        deleted only once this run's first checkpoint is on disk, so a crash or a full disk before
        then still leaves a resumable state."""
        stale = list_checkpoints(self.folder)
        previous = self.folder / PREVIOUS_RUN
        if previous.is_dir():  # set aside by a fresh start that never wrote a checkpoint
            self._previous = previous
        if not stale:
            return
        try:
            previous.mkdir(exist_ok=True)
            for path in stale:
                os.replace(path, previous / path.name)
        except OSError as error:
            raise write_error(previous, error, "folder") from None
        self._previous = previous
        trainer.echo(
            f"set aside {len(stale)} checkpoint(s) of an earlier run in {previous}; "
            "deleted once this run's first checkpoint is written"
        )

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        if self._on_step(trainer.state.global_step) and trainer.at_step_boundary:
            self.save(trainer)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        epoch = trainer.state.epoch
        ranked = self._rank(trainer, record)
        final = trainer.should_stop or epoch >= trainer.max_epochs
        if self._on_epoch(epoch) or ranked or self._keep(epoch) or final:
            self.save(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.save_on_stop and trainer.stopped_mid_epoch and trainer.stop_resumable and trainer.at_step_boundary:
            self.save(trainer)
        self.writer.wait()

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        """Let the write in flight finish, so the folder holds whole files only."""
        self.writer.wait()

    def _rank(self, trainer: Trainer, record: Mapping[str, float]) -> bool:
        """Enter this epoch in the best list when it ranks; True when it did."""
        if not self.keep_best or trainer.monitor not in record:
            return False
        value = float(record[trainer.monitor])
        if not math.isfinite(value):
            return False
        if len(self.best) >= self.keep_best and not better(value, self.best[-1][0], trainer.mode):
            return False
        name = checkpoint_name(*trainer.position)
        self.best.append([value, name])
        # stable: among equal values the earlier epoch stays ahead
        self.best.sort(key=lambda item: item[0] if trainer.mode == "min" else -item[0])
        del self.best[self.keep_best :]
        return True

    def save(self, trainer: Trainer) -> None:
        """Write a checkpoint of the trainer's current state (once per training position; never
        after a stop that is not resumable, such as a diverged loss)."""
        position = trainer.position
        if position == self.last_saved or not trainer.stop_resumable:
            return
        self.last_saved = position
        name = checkpoint_name(*position)
        keep_names = {item[1] for item in self.best}
        self.saved.append(name)
        self.writer.submit(self.folder / name, trainer.checkpoint_state(), after=lambda: self._prune(keep_names))

    def _prune(self, best_names: set[str]) -> None:
        if self._previous is not None:  # this run now has a checkpoint of its own
            shutil.rmtree(self._previous, ignore_errors=True)
            self._previous = None
        files = list_checkpoints(self.folder)
        keep = {path.name for path in files[-self.keep_last :]} | best_names
        for path in files:
            epoch, batch, _ = parse_name(path.name) or (0, 1, 0)
            if batch == 0 and self._keep(epoch):
                keep.add(path.name)
        delete_except(self.folder, keep)

    def state_dict(self) -> dict[str, Any]:
        return {"best": [list(item) for item in self.best]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = [[float(value), str(name)] for value, name in state.get("best", [])]

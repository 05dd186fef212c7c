"""Built-in callbacks. A callback is any object with some of the hook methods listed in
:mod:`trainflow.training.trainer` (``on_fit_start(trainer)``, ``on_batch_end(trainer, batch, loss)``,
...); subclassing :class:`Callback` (:mod:`trainflow.training.hooks`) is optional. A callback
that keeps state across a resume implements ``state_dict()`` / ``load_state_dict(state)``
(plain data only: it goes into the checkpoint). Callbacks run in ascending ``order`` (default
0), ties in the order given; the built-ins that act on the epoch's final state run last:
loggers (90), end-save (95), checkpointing (100), progress (110). Callbacks with
``main_process_only = True`` (those that write files or print) run on the main process alone
when training is distributed.

* :class:`Checkpoint` (:mod:`trainflow.training.checkpointing`): resumable checkpoints every N
  epochs and/or N optimizer steps; keeps the last k, the best k by the trainer's monitor, and
  every Nth epoch.
* :class:`EarlyStopping`: stop when a metric stops improving; stop at once on a NaN/inf loss.
* :class:`LRMonitor`: logs the learning rate of each parameter group.
* :class:`GradNormMonitor`: logs the gradient norm before and after clipping.
* :class:`TimeBudget`: stops after a wall-clock budget with a resumable checkpoint.
* :class:`MaxBatchesPerEpoch`: ends each epoch after N batches (quick runs, smoke tests).
* :class:`EndSave`: at the end, saves the final weights and the validation and test results.

:func:`default_callbacks` adds the built-ins the Trainer's options ask for.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from trainflow.errors import ConfigError
from trainflow.io import atomic_write_json
from trainflow.numbers import format_metric
from trainflow.training.checkpointing import PREVIOUS_RUN, Checkpoint
from trainflow.training.events import every
from trainflow.training.hooks import HOOKS, Callback, better, hook_methods

if TYPE_CHECKING:
    from trainflow.training.trainer import Trainer

__all__ = [
    "HOOKS",
    "PREVIOUS_RUN",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "EndSave",
    "GradNormMonitor",
    "LRMonitor",
    "MaxBatchesPerEpoch",
    "TimeBudget",
    "default_callbacks",
    "hook_methods",
]


def _metric(record: Mapping[str, float], key: str, owner: str) -> float:
    if key not in record:
        known = ", ".join(k for k in record if k != "epoch")
        raise ConfigError(f"{owner}: {key!r} is not a metric this run computes; available: {known}")
    return float(record[key])


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``check_finite``, a NaN or infinite training loss (checked after every batch) or monitored
    value stops the run at once; such a stop is not resumable, since the weights are no longer
    finite. On a resume with a larger ``patience`` the run goes on; with the same patience a run
    that already stopped reports so and trains no further.
    """

    def __init__(
        self,
        monitor: str = "val/loss",
        mode: Literal["min", "max"] = "min",
        patience: int = 5,
        min_delta: float = 0.0,
        check_finite: bool = True,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.min_delta = min_delta
        self.check_finite = check_finite
        self.best: float | None = None
        self.wait = 0
        self.best_epoch: int | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.best is not None and self.wait >= self.patience:
            trainer.request_stop(
                f"early stopping already ended this run: {self.monitor} last improved at epoch {self.best_epoch} "
                f"and patience is {self.patience}; raise the patience to train further",
            )  # at the epoch boundary it stopped at, as the run it resumes did: stopped_early holds

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        if self.check_finite and not bool(torch.isfinite(loss).all()):
            trainer.request_stop(
                f"training loss is {float(loss.float().mean())} at epoch {trainer.state.epoch + 1}, "
                f"batch {trainer.state.batch_in_epoch}: the run diverged (try a lower learning rate)",
                now=True,
                resumable=False,
            )

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        value = _metric(record, self.monitor, "early stopping monitor")
        if not math.isfinite(value):
            if self.check_finite:
                trainer.request_stop(f"{self.monitor} is {value} at epoch {trainer.state.epoch}", resumable=False)
            return
        if better(value, self.best, self.mode, self.min_delta):
            self.best, self.wait, self.best_epoch = value, 0, trainer.state.epoch
        else:
            self.wait += 1
        if self.wait >= self.patience:
            trainer.request_stop(
                f"early stopping: {self.monitor} has not improved for {self.wait} epoch(s) "
                f"(best {format_metric(self.best)} at epoch {self.best_epoch})"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.wait, self.best_epoch = state["best"], int(state["wait"]), state["best_epoch"]


class LRMonitor(Callback):
    """Logs ``lr`` (or ``lr/group{i}`` with several parameter groups) at each epoch start and,
    with ``every_n_steps``, after every N-th optimizer step."""

    def __init__(self, every_n_steps: int = 0) -> None:
        self.every_n_steps = every_n_steps
        self._due = every(every_n_steps)

    def _log(self, trainer: Trainer) -> None:
        groups = trainer.optimizer.param_groups
        values = {"lr" if len(groups) == 1 else f"lr/group{i}": float(g["lr"]) for i, g in enumerate(groups)}
        trainer.log(values, step=trainer.state.global_step)

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._log(trainer)

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        if trainer.at_step_boundary and self._due(trainer.state.global_step):
            self._log(trainer)


class GradNormMonitor(Callback):
    """Logs the total gradient norm before and after clipping (``grad_norm/before_clip``,
    ``grad_norm/after_clip``) on every N-th optimizer step; the last values stay readable as
    ``before`` and ``after``. Gradients are unscaled first under fp16, so norms are comparable."""

    def __init__(self, every_n_steps: int = 1, norm_type: float = 2.0) -> None:
        self.every_n_steps = max(1, every_n_steps)
        self._every = every(self.every_n_steps)
        self.norm_type = norm_type
        self.before: float | None = None
        self.after: float | None = None

    def _due(self, trainer: Trainer) -> bool:
        return self._every(trainer.state.global_step + 1)  # the step about to be taken

    def _norm(self, trainer: Trainer) -> float:
        grads = [p.grad for p in trainer.parameters if p.grad is not None]
        return float(torch.nn.utils.get_total_norm(grads, self.norm_type)) if grads else 0.0

    def on_before_clip(self, trainer: Trainer) -> None:
        if self._due(trainer):
            self.before = self._norm(trainer)

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        if self._due(trainer):
            self.after = self._norm(trainer)
            values = {"grad_norm/before_clip": self.before or 0.0, "grad_norm/after_clip": self.after}
            trainer.log(values, step=trainer.state.global_step + 1)


class TimeBudget(Callback):
    """Stops the run once ``seconds`` of wall-clock time have passed since this fit started.

    The check runs after each optimizer step; the stop is resumable: the :class:`Checkpoint`
    callback saves the exact position, and the next run continues from it with a fresh budget
    (for jobs on preemptible or time-limited machines). ``clock`` is injectable for tests.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.start = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.start = self.clock()

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        if trainer.at_step_boundary and self.clock() - self.start >= self.seconds:
            trainer.request_stop(f"time budget of {self.seconds:g}s used up; run again to continue", now=True)


class MaxBatchesPerEpoch(Callback):
    """Ends every training epoch after ``max_batches`` batches (validation still runs in full)."""

    def __init__(self, max_batches: int) -> None:
        if max_batches < 1:
            raise ValueError(f"max_batches must be >= 1, got {max_batches}")
        self.max_batches = max_batches

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        if trainer.state.batch_in_epoch >= self.max_batches:
            trainer.end_epoch()


class EndSave(Callback):
    """At the end of a fit that trained, writes to ``folder``: ``model.pt`` (the final weights as a
    model snapshot, :mod:`trainflow.models.snapshot`'s one format, with the trainer's config and
    data set info when it has them) and ``results.json`` (the last validation metrics, the test
    metrics when a test loader was given, the best epoch and the per-epoch history) —
    aitoolbox's end-save result package."""

    order = 95
    main_process_only = True

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def on_fit_end(self, trainer: Trainer) -> None:
        from trainflow.models.snapshot import save_model_snapshot

        if not trainer.epochs_run:
            return
        last = trainer.state.history[-1] if trainer.state.history else {}
        info = trainer.build.get("info")
        save_model_snapshot(
            self.folder / "model.pt", trainer.model, trainer.config, info, epoch=trainer.state.epoch, metrics=last
        )
        results = {
            "epochs": trainer.state.epoch,
            "monitor": trainer.monitor,
            "best_epoch": trainer.state.best_epoch,
            "best_value": trainer.state.best_value,
            "val": {k.split("/", 1)[1]: v for k, v in last.items() if k.startswith("val/")},
            "test": {k.split("/", 1)[1]: v for k, v in (trainer.test_results or {}).items()},
            "history": trainer.state.history,
        }
        atomic_write_json(self.folder / "results.json", json.loads(json.dumps(results)))


def default_callbacks(
    callbacks: Sequence[Any],
    *,
    checkpoint_dir: str | Path | None,
    end_save_dir: str | Path | None,
    loggers: Sequence[Any],
    log_every_n_steps: int,
    progress: str | bool,
) -> list[Any]:
    """The user's ``callbacks`` plus the built-ins the Trainer's options ask for: a
    :class:`Checkpoint` in ``checkpoint_dir`` (unless one is given), :class:`EndSave`, the loggers'
    driver and the progress display ("auto", "bar", "lines"; False or "off" for none)."""
    from trainflow.training.loggers import Loggers
    from trainflow.training.progress import ProgressBar

    found = list(callbacks)
    if checkpoint_dir is not None and not any(isinstance(c, Checkpoint) for c in found):
        found.append(Checkpoint(checkpoint_dir))
    if end_save_dir is not None:
        found.append(EndSave(end_save_dir))
    if loggers:
        found.append(Loggers(list(loggers), log_every_n_steps=log_every_n_steps))
    if progress not in (False, "off"):
        found.append(ProgressBar("auto" if progress is True else progress))  # type: ignore[arg-type]
    return found

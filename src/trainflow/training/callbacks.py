"""Built-in callbacks. A callback is any object with some of the hook methods listed in
:mod:`trainflow.training.trainer` (``on_fit_start(trainer)``, ``on_batch_end(trainer, batch, loss)``,
...); subclassing :class:`Callback` is optional. A callback that keeps state across a resume
implements ``state_dict()`` / ``load_state_dict(state)`` (plain data only: it goes into the
checkpoint). Callbacks run in ascending ``order`` (default 0), ties in the order given; the
built-ins that act on the epoch's final state run last: loggers (90), checkpointing (100),
progress (110). Callbacks with ``main_process_only = True`` (those that write files or print)
run on the main process alone when training is distributed.

* :class:`Checkpoint`: resumable checkpoints every N epochs and/or N optimizer steps; keeps the
  last k, the best k by the trainer's monitor, and every Nth epoch.
* :class:`EarlyStopping`: stop when a metric stops improving; stop at once on a NaN/inf loss.
* :class:`LRMonitor`: logs the learning rate of each parameter group.
* :class:`GradNormMonitor`: logs the gradient norm before and after clipping.
* :class:`TimeBudget`: stops after a wall-clock budget with a resumable checkpoint.
* :class:`MaxBatchesPerEpoch`: ends each epoch after N batches (quick runs, smoke tests).
* :class:`EndSave`: at the end, saves the final weights and the validation and test results.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from trainflow.errors import ConfigError
from trainflow.io import atomic_write_json, write_error
from trainflow.numbers import format_metric
from trainflow.training.checkpoint import (
    CheckpointWriter,
    checkpoint_name,
    delete_except,
    list_checkpoints,
    parse_name,
)
from trainflow.training.events import every

if TYPE_CHECKING:
    from trainflow.training.trainer import Trainer

PREVIOUS_RUN = ".previous"  # an earlier run's checkpoints, set aside by a fresh start

HOOKS = (
    "on_fit_start",
    "on_epoch_start",
    "on_batch_start",
    "on_before_clip",
    "on_before_optimizer_step",
    "on_batch_end",
    "on_validation_end",
    "on_epoch_end",
    "on_test_end",
    "on_fit_end",
    "on_exception",
)


class Callback:
    """Optional base class: every hook is a no-op that the trainer skips without calling."""

    order: int = 0

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer) -> None: ...
    def on_batch_start(self, trainer: Trainer, batch: Any) -> None: ...
    def on_before_clip(self, trainer: Trainer) -> None: ...
    def on_before_optimizer_step(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None: ...
    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None: ...
    def on_test_end(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...
    def on_exception(self, trainer: Trainer, error: BaseException) -> None: ...


def hook_methods(callbacks: list[Any], hook: str) -> list[Callable[..., None]]:
    """The bound ``hook`` methods of ``callbacks`` in run order, leaving out Callback's no-ops."""
    methods = []
    for callback in sorted(callbacks, key=lambda c: getattr(c, "order", 0)):
        method = getattr(callback, hook, None)
        if method is None or getattr(type(callback), hook, None) is getattr(Callback, hook):
            continue
        methods.append(method)
    return methods


def _better(value: float, reference: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if reference is None:
        return True
    return value < reference - min_delta if mode == "min" else value > reference + min_delta


def _metric(record: Mapping[str, float], key: str, owner: str) -> float:
    if key not in record:
        known = ", ".join(k for k in record if k != "epoch")
        raise ConfigError(f"{owner}: {key!r} is not a metric this run computes; available: {known}")
    return float(record[key])


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
        if len(self.best) >= self.keep_best and not _better(value, self.best[-1][0], trainer.mode):
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
        if _better(value, self.best, self.mode, self.min_delta):
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

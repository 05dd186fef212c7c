"""The Trainer: a training loop for any ``nn.Module``, loader, optimizer and loss.

    trainer = Trainer(model, train_loader, val_loader, test_loader, optimizer, criterion)
    model = trainer.fit(num_epochs=10)

The Trainer decides *when* (epochs, steps, validation, checkpoints, stopping); the model, the
loss and the metrics decide *what*. Batches are ``(inputs, targets)``: ``criterion(model(inputs),
targets)`` is the loss. Everything beyond the loop below is a callback (duck-typed objects with
some of the hook methods; see :mod:`trainflow.training.callbacks`).

Counters: ``state.epoch`` counts completed epochs, so it is the 0-based index of the running epoch
and, once the epoch has ended, its 1-based number (``record["epoch"]``, history rows, file names).
``state.batch_in_epoch`` counts batches done in the running epoch. ``state.global_step`` counts
optimizer steps done (with gradient accumulation, one step per ``grad_accum_steps`` batches).

The loop and its hooks, in the order they run::

    fit(num_epochs, resume)
        resume: load the newest readable checkpoint whose training fingerprint matches
        on_fit_start(trainer)
        while state.epoch < max_epochs and not should_stop:
            train_epoch()
                model.train(); on_epoch_start(trainer); loader.set_epoch(state.epoch) if it has one
                (a resumed epoch replays the epoch's shuffle and skips the batches already done)
                for batch in train_loader:
                    on_batch_start(trainer, batch)
                    train_step(batch): forward under autocast, backward of loss / grad_accum_steps
                        after every grad_accum_steps-th batch: optimizer_step():
                            unscale gradients (fp16)
                            on_before_clip(trainer)
                            clip by norm / by value
                            on_before_optimizer_step(trainer)
                            optimizer.step(); zero_grad(); state.global_step += 1
                            scheduler.step() when scheduler_interval == "step"
                    state.batch_in_epoch += 1
                    on_batch_end(trainer, batch, loss)          # loss: this batch's, detached
                    break if end_epoch() or request_stop(now=True) was called (by any process, under DDP)
                optimizer_step() if accumulated gradients are left over
            validate(): evaluate val_loader; on_validation_end(trainer, metrics)  # may add metrics
            scheduler.step() when scheduler_interval == "epoch"
            state.epoch += 1; state.batch_in_epoch = 0; update state.best_*; state.history.append(record)
            on_epoch_end(trainer, record)     # record: epoch, train/loss, val/loss, val/<metric>, ...
        test(): evaluate test_loader (when given and an epoch ran); on_test_end(trainer, metrics)
        on_fit_end(trainer)
        (on any exception: on_exception(trainer, error), then the exception propagates)

Exact resume: a checkpoint holds the RNG state at the start of the running epoch and the current
one. A mid-epoch resume restores the first, rebuilds the epoch's loader iterator (so the shuffle
is drawn exactly as before), skips the batches already done (or restores a stateful loader's
position), then restores the second; on CPU the result is bit-identical to a run never stopped.

Distributed training hooks in through ``is_main_process`` (callbacks marked ``main_process_only``,
the writers, run on rank 0 alone), torchmetrics' own sync, ``reduce_sum`` for the loss sums, and
the ``set_epoch`` call on the loader or its sampler. Under torchrun (``WORLD_SIZE`` > 1) the
Trainer joins the process group, shards its loaders and trains a DDP wrapper of the model
(see :mod:`trainflow.training.distributed`); after every batch and epoch the processes agree on
stop requests (``_sync_stop``), so they all leave the loop at the same batch.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from trainflow.errors import CheckpointError, ConfigError, DataError
from trainflow.models.snapshot import clean_state_dict, unwrap_model
from trainflow.training import distributed
from trainflow.training.callbacks import HOOKS, Checkpoint, EarlyStopping, EndSave, hook_methods
from trainflow.training.checkpoint import (
    CHECKPOINT_FORMAT,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    parse_name,
    remove_stale_temporaries,
)
from trainflow.training.loggers import Loggers
from trainflow.training.progress import ProgressBar
from trainflow.training.seeding import RngState, configure_determinism, get_rng_state, set_rng_state

if TYPE_CHECKING:
    import torchmetrics

    from trainflow.config import Config
    from trainflow.data.datasets import DatasetInfo

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass
class TrainState:
    """Where training is; see the module docstring for the counters' bases."""

    epoch: int = 0
    batch_in_epoch: int = 0
    global_step: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Trains ``model`` on ``train_loader`` with ``optimizer`` and ``criterion``.

    Options: ``scheduler`` stepped per ``scheduler_interval`` ("epoch" or "step"); ``metrics``
    (torchmetrics, a dict or MetricCollection) computed on validation and test; ``monitor`` /
    ``mode`` the metric that defines the best epoch; ``grad_accum_steps``; ``clip_grad_norm`` /
    ``clip_grad_value`` (0: off); ``precision`` "fp32", "bf16" (autocast on CPU and CUDA) or
    "fp16" (autocast and gradient scaling, CUDA only); ``compile`` (True or torch.compile kwargs);
    ``deterministic`` (True/False sets torch's deterministic mode, None leaves it alone);
    ``checkpoint_dir`` (adds a :class:`Checkpoint` callback with its defaults); ``end_save_dir``
    (adds :class:`EndSave`); ``loggers``; ``progress`` ("auto", "bar", "lines" or "off");
    ``config`` / ``build`` (the experiment config and what rebuilds the model, stored in
    checkpoints for :meth:`from_checkpoint`; the config's training fingerprint guards resumes).
    """

    def __init__(
        self,
        model: nn.Module,
        train_loader: Iterable[Any] | None,
        val_loader: Iterable[Any] | None = None,
        test_loader: Iterable[Any] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        criterion: Callable[[Any, Any], torch.Tensor] | None = None,
        *,
        max_epochs: int | None = None,
        scheduler: Any = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        metrics: Mapping[str, torchmetrics.Metric] | None = None,
        monitor: str = "val/loss",
        mode: Literal["min", "max"] = "min",
        callbacks: Sequence[Any] = (),
        loggers: Sequence[Any] = (),
        log_every_n_steps: int = 50,
        checkpoint_dir: str | Path | None = None,
        end_save_dir: str | Path | None = None,
        grad_accum_steps: int = 1,
        clip_grad_norm: float = 0.0,
        clip_grad_value: float = 0.0,
        precision: Precision = "fp32",
        device: str | torch.device = "auto",
        compile: bool | Mapping[str, Any] = False,
        deterministic: bool | None = None,
        progress: Literal["auto", "bar", "lines", "off"] | bool = "auto",
        config: Config | None = None,
        build: Mapping[str, Any] | None = None,
        echo: Callable[[str], None] = print,
    ) -> None:
        if optimizer is None or criterion is None:
            raise TypeError("Trainer needs an optimizer and a criterion (loss function)")
        if scheduler_interval not in ("epoch", "step"):
            raise ConfigError(f"train.scheduler_interval: must be 'epoch' or 'step', got {scheduler_interval!r}")
        if mode not in ("min", "max"):
            raise ConfigError(f"mode: must be 'min' or 'max', got {mode!r}")
        if grad_accum_steps < 1:
            raise ConfigError(f"train.grad_accum_steps: must be >= 1, got {grad_accum_steps}")
        self.world_size = distributed.setup(config.train.distributed if config is not None else None, device)
        self.device = distributed.local_device(device)
        if precision not in ("fp32", "bf16", "fp16"):
            raise ConfigError(f"train.precision: must be fp32, bf16 or fp16, got {precision!r}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ConfigError(
                f"train.precision: fp16 needs a CUDA device (it uses a gradient scaler), this run is on "
                f"{self.device.type}; use bf16 or fp32"
            )
        self.model = model.to(self.device)
        self.train_loader = distributed.shard_loader(train_loader, train=True, report=echo)
        self.val_loader = distributed.shard_loader(val_loader, train=False, report=echo)
        self.test_loader = distributed.shard_loader(test_loader, train=False, report=echo)
        self.optimizer, self.criterion, self.scheduler = optimizer, criterion, scheduler
        self.scheduler_interval = scheduler_interval
        self.max_epochs = max_epochs or 0
        self.monitor, self.mode = monitor, mode
        self.grad_accum_steps = grad_accum_steps
        self.clip_grad_norm, self.clip_grad_value = clip_grad_norm, clip_grad_value
        self.precision = precision
        self.deterministic = deterministic
        self.config, self.build = config, dict(build or {})
        self.echo = echo if distributed.is_main_process() else _quiet
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self._compile = (dict(compile) if isinstance(compile, Mapping) else {}) if compile else None
        self._forward: Callable[[Any], Any] = model
        if self._compile is not None:
            self._forward = torch.compile(model, **self._compile)
        self._plain_forward = self._forward  # evaluation; training too, except under DDP (see fit)
        self._autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
        if precision != "fp32":
            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            self._autocast = lambda: torch.autocast(self.device.type, dtype=dtype)
        self._move_batches = self.device.type != "cpu"
        self._metrics = self._split_metrics(metrics)

        self.callbacks: list[Any] = list(callbacks)
        if checkpoint_dir is not None and not any(isinstance(c, Checkpoint) for c in self.callbacks):
            self.callbacks.append(Checkpoint(checkpoint_dir))
        if end_save_dir is not None:
            self.callbacks.append(EndSave(end_save_dir))
        self.loggers = list(loggers)
        if self.loggers:
            self.callbacks.append(Loggers(self.loggers, log_every_n_steps=log_every_n_steps))
        if progress not in (False, "off"):
            self.callbacks.append(ProgressBar("auto" if progress is True else progress))  # type: ignore[arg-type]

        self.state = TrainState()
        self.fingerprint = _fingerprint(config)
        self.test_results: dict[str, float] | None = None
        self.resumed_from: Path | None = None
        self.epochs_run = 0
        self._accumulated = 0
        self._loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self._loss_batches = 0
        self._epoch_rng: RngState | None = None
        self._resume_epoch: dict[str, Any] | None = None
        self._reset_stop()
        self._hooks = self._hook_table()

    # ------------------------------------------------------------------------------------------
    # The loop

    def fit(self, num_epochs: int | None = None, resume: bool | str | Path = False) -> nn.Module:
        """Train until ``num_epochs`` epochs are done in all (counting resumed ones) or a stop.

        ``resume``: True continues from the newest checkpoint of the :class:`Checkpoint` callback's
        folder when its training fingerprint matches (else says why and starts fresh); a path
        (file or folder) resumes from there and fails if it does not match. Returns the model.
        """
        if num_epochs is not None:
            self.max_epochs = num_epochs
        if self.max_epochs < 1:
            raise ConfigError("fit: give num_epochs (or max_epochs to the Trainer), at least 1")
        if self.deterministic is not None:
            configure_determinism(self.deterministic)
        self._reset_stop()
        if resume:
            self.resume(resume)
        self._hooks = self._hook_table()
        self.epochs_run = 0
        if self.state.epoch >= self.max_epochs:
            self.echo(f"training already finished: {self.state.epoch} of {self.max_epochs} epochs done; nothing to do")
        try:
            self._forward = self._training_forward()
            with self._stop_on_interrupt():
                self._call("on_fit_start")
                self._sync_stop()
                while self.state.epoch < self.max_epochs and not self.should_stop:
                    train_metrics = self.train_epoch()
                    if self.stopped_mid_epoch:
                        break
                    self._end_epoch({"epoch": self.state.epoch + 1, **train_metrics, **self.validate()})
            if self.interrupted:
                e, b = self.state.epoch + (1 if self.stopped_mid_epoch else 0), self.state.batch_in_epoch
                where = f"epoch {e}, batch {b}" if self.stopped_mid_epoch else f"the end of epoch {e}"
                self.echo(f"interrupted at {where}; fit(resume=True) continues")
            elif self.stop_reason:
                self.echo(f"stopped: {self.stop_reason}")
            if self.test_loader is not None and self.epochs_run and not self.interrupted:
                self.test()
            self._call("on_fit_end")
        except BaseException as error:
            self._call("on_exception", error)
            raise
        finally:  # a DDP wrapper lives for one fit: it must be gone before the process group is destroyed
            self._forward = self._plain_forward
        return self.model

    @contextlib.contextmanager
    def _stop_on_interrupt(self) -> Iterator[None]:
        """Ctrl-C (SIGINT) stops the run after the running batch, as a resumable stop: the
        Checkpoint callback saves that position and :meth:`fit` returns. A second Ctrl-C
        interrupts at once (KeyboardInterrupt). Only in the main thread, where Python allows it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.interrupted = True
            self.request_stop("interrupted", now=self.model.training)  # mid-epoch, or after validation

        previous = signal.signal(signal.SIGINT, stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training data (the rest of it, after a mid-epoch resume)."""
        self.model.train()
        hooks_start, hooks_end = self._hooks["on_batch_start"], self._hooks["on_batch_end"]
        for batch in self._epoch_batches():
            for hook in hooks_start:
                hook(self, batch)
            loss = self.train_step(batch)
            self.state.batch_in_epoch += 1
            for hook in hooks_end:
                hook(self, batch, loss)
            self._sync_stop()
            if self._break_epoch:
                break
        if self.stopped_mid_epoch:
            return {}
        if not self._loss_batches:
            raise DataError("the training loader yielded no batches; check the train split and batch size")
        if self._accumulated:
            self.optimizer_step()
        return {"train/loss": float(self.reduce_sum(self._loss_sum) / self.reduce_sum(self._loss_batches))}

    def train_step(self, batch: Any) -> torch.Tensor:
        """Forward and backward of one batch; steps the optimizer every ``grad_accum_steps`` batches."""
        inputs, targets = self._to_device(batch)
        with self._autocast():
            loss = self.criterion(self._forward(inputs), targets)
        scaled = loss / self.grad_accum_steps if self.grad_accum_steps > 1 else loss
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        self._accumulated += 1
        if self._accumulated == self.grad_accum_steps:
            self.optimizer_step()
        loss = loss.detach()
        self._loss_sum += loss
        self._loss_batches += 1
        return loss

    def optimizer_step(self) -> None:
        """Unscale, clip, step the optimizer (and a per-step scheduler), clear the gradients."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        self._call("on_before_clip")
        if self.clip_grad_norm:
            nn.utils.clip_grad_norm_(self.parameters, self.clip_grad_norm)
        if self.clip_grad_value:
            nn.utils.clip_grad_value_(self.parameters, self.clip_grad_value)
        self._call("on_before_optimizer_step")
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._accumulated = 0
        self.state.global_step += 1
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()

    def validate(self) -> dict[str, float]:
        """Loss and metrics on ``val_loader`` (keys ``val/...``); empty without a val loader."""
        metrics = self.evaluate(self.val_loader, "val") if self.val_loader is not None else {}
        self._call("on_validation_end", metrics)
        return metrics

    def test(self) -> dict[str, float]:
        """Loss and metrics on ``test_loader`` (keys ``test/...``), kept in ``test_results``."""
        if self.test_loader is None:
            raise ValueError("test(): the Trainer has no test_loader")
        self.test_results = self.evaluate(self.test_loader, "test")
        self._call("on_test_end", self.test_results)
        return self.test_results

    @torch.no_grad()
    def evaluate(self, loader: Iterable[Any], prefix: str) -> dict[str, float]:
        """``{prefix}/loss`` (mean over samples) and ``{prefix}/<metric>`` for each scalar metric."""
        was_training = self.model.training
        self.model.eval()
        distributed.sync_buffers(self.model)
        metrics = self._metrics.get(prefix, self._metrics.get("val"))
        if metrics is not None:
            metrics.reset()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        for batch in loader:
            inputs, targets = self._to_device(batch)
            with self._autocast():
                outputs = self._plain_forward(inputs)  # no DDP collectives per evaluation batch
                loss = self.criterion(outputs, targets)
            size = len(targets)
            total += loss.detach() * size
            count += size
            if metrics is not None:
                low_precision = outputs.dtype in (torch.float16, torch.bfloat16)
                metrics.update(outputs.float() if low_precision else outputs, targets)
        total, count = self.reduce_sum(total), self.reduce_sum(count)
        if not count:
            raise DataError(f"the {prefix} loader yielded no batches; check the {prefix} split")
        results = {f"{prefix}/loss": float(total / count)}
        if metrics is not None:
            for name, value in metrics.compute().items():
                if isinstance(value, torch.Tensor) and value.numel() == 1:
                    results[f"{prefix}/{name}"] = float(value)
        self.model.train(was_training)
        return results

    # ------------------------------------------------------------------------------------------
    # Control, for callbacks

    def request_stop(self, reason: str, *, now: bool = False, resumable: bool = True) -> None:
        """Stop after this epoch (``now``: after this batch, skipping validation). A stop that is
        not ``resumable`` (a diverged run) writes no further checkpoint."""
        self.should_stop = True
        self.stop_reason = self.stop_reason or reason
        self.stop_resumable = self.stop_resumable and resumable
        if now:
            self._break_epoch = True
            self.stopped_mid_epoch = True

    def end_epoch(self) -> None:
        """End the running epoch after this batch (validation and epoch-end hooks still run)."""
        self._break_epoch = True

    def log(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Send step-level scalars to every logger (``step`` defaults to ``state.global_step``)."""
        step = self.state.global_step if step is None else step
        for logger in self.loggers:
            if hasattr(logger, "log_scalars"):
                logger.log_scalars(values, step)

    def reduce_sum(self, value: torch.Tensor | int) -> torch.Tensor | int:
        """The sum of ``value`` over processes: the value itself in a single process."""
        return distributed.reduce_sum(value)

    @property
    def is_main_process(self) -> bool:
        """True on the process that writes files (rank 0); always True in a single process."""
        return distributed.is_main_process()

    @property
    def position(self) -> tuple[int, int, int]:
        """``(state.epoch, state.batch_in_epoch, state.global_step)``."""
        return self.state.epoch, self.state.batch_in_epoch, self.state.global_step

    @property
    def at_step_boundary(self) -> bool:
        """True when no accumulated gradient is pending (a checkpoint here resumes exactly)."""
        return self._accumulated == 0

    @property
    def nothing_to_do(self) -> bool:
        return self.state.epoch >= self.max_epochs or self.should_stop

    @property
    def stopped_early(self) -> bool:
        """True when a callback ended the run at an epoch boundary before ``max_epochs``."""
        return self.should_stop and not self.stopped_mid_epoch and self.state.epoch < self.max_epochs

    # ------------------------------------------------------------------------------------------
    # State: checkpoints and resume

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything a resume needs, as plain data and tensors (live references: encode it to keep it)."""
        s = self.state
        loader_state = getattr(self.train_loader, "state_dict", None)
        return {
            "format": CHECKPOINT_FORMAT,
            "model": {
                "config": _to_dict(self.config.model) if self.config is not None else None,
                "build": dict(self.build),
                "state_dict": clean_state_dict(unwrap_model(self.model).state_dict()),
            },
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "progress": {
                "epoch": s.epoch,
                "batch_in_epoch": s.batch_in_epoch,
                "global_step": s.global_step,
                "loss_sum": self._loss_sum,
                "loss_batches": self._loss_batches,
            },
            "best": {"monitor": self.monitor, "mode": self.mode, "value": s.best_value, "epoch": s.best_epoch},
            "history": [dict(record) for record in s.history],
            "callbacks": {key: callback.state_dict() for key, callback in self._stateful_callbacks()},
            "rng": {"current": get_rng_state(), "epoch_start": self._epoch_rng},
            "loader": {
                "epoch": s.epoch,
                "batches_done": s.batch_in_epoch,
                "state": loader_state() if callable(loader_state) else None,
            },
            "config": _to_dict(self.config) if self.config is not None else None,
            "fingerprint": self.fingerprint,
        }

    def load_checkpoint_state(self, payload: Mapping[str, Any]) -> None:
        """Restore what :meth:`checkpoint_state` captured (model, optimizer, RNG, position, ...)."""
        unwrap_model(self.model).load_state_dict(payload["model"]["state_dict"])
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scheduler is not None and payload["scheduler"] is not None:
            self.scheduler.load_state_dict(payload["scheduler"])
        if self.scaler is not None and payload["scaler"]:
            self.scaler.load_state_dict(payload["scaler"])
        progress, best = payload["progress"], payload["best"]
        self.state = TrainState(
            epoch=int(progress["epoch"]),
            batch_in_epoch=int(progress["batch_in_epoch"]),
            global_step=int(progress["global_step"]),
            best_value=best["value"],
            best_epoch=best["epoch"],
            # interned keys, as in a run never stopped: pickle memoises strings by identity, so a
            # snapshot of a resumed run's metrics then serialises to the same bytes
            history=[{sys.intern(key): value for key, value in record.items()} for record in payload["history"]],
        )
        self._loss_sum = progress["loss_sum"].to(device=self.device, dtype=torch.float64)
        self._loss_batches = int(progress["loss_batches"])
        states = payload["callbacks"]
        for key, callback in self._stateful_callbacks():
            if key in states:
                callback.load_state_dict(states[key])
        set_rng_state(payload["rng"]["current"])
        self._epoch_rng = payload["rng"]["epoch_start"]
        self._accumulated = 0
        self._resume_epoch = None
        if self.state.batch_in_epoch > 0:
            self._resume_epoch = {
                "epoch_start": payload["rng"]["epoch_start"],
                "current": payload["rng"]["current"],
                "loader": payload["loader"]["state"],
            }

    def resume(self, source: bool | str | Path = True) -> bool:
        """Load the checkpoint ``source`` names (see :meth:`fit`); True when one was loaded.

        Under DDP the main process picks and reads the checkpoint, and every process loads it.
        """
        found = distributed.run_on_main(self._find_checkpoint, source)
        if found is None:
            return False
        path, payload = found
        self.load_checkpoint_state(payload)
        self.resumed_from = path
        e, b, s = self.position
        self.echo(f"resumed from {path} (epochs done {e}, batches into the next {b}, optimizer steps {s})")
        return True

    def _find_checkpoint(self, source: bool | str | Path) -> tuple[Path, dict[str, Any]] | None:
        """The checkpoint :meth:`resume` loads and its contents; None to start fresh."""
        folder = self._checkpoint_folder() if source is True else Path(source)
        if folder is None:
            raise ConfigError("resume=True needs a checkpoint folder: pass checkpoint_dir= or a Checkpoint callback")
        if source is True and not folder.exists():
            return None
        scanned = folder.is_dir()
        if scanned:
            remove_stale_temporaries(folder)
            found = latest_checkpoint(folder, report=self.echo)
            if found is None:
                return None
            path, payload = found
        else:
            path, payload = folder, load_checkpoint(folder)
        if payload.get("fingerprint") != self.fingerprint:
            why = _config_change(payload.get("config"), self.config)
            if source is not True:
                raise CheckpointError(f"{path}: made with a different training config ({why}); cannot resume from it")
            self.echo(f"checkpoint {path.name} was made with a different training config ({why}): starting fresh")
            return None
        if scanned:
            self._drop_newer(path)
        return path, payload

    @classmethod
    def from_config(
        cls,
        config: Config,
        info: DatasetInfo,
        train_loader: Iterable[Any] | None,
        val_loader: Iterable[Any] | None = None,
        test_loader: Iterable[Any] | None = None,
        *,
        steps_per_epoch: int | None = None,
        checkpoint_dir: str | Path | None = None,
        **options: Any,
    ) -> Trainer:
        """Build model, loss, optimizer, scheduler, metrics and callbacks from the registries.

        ``config.train`` supplies the options; ``info`` (the data set) sizes the model and the
        metrics. ``checkpoint_dir`` adds a :class:`Checkpoint` set by ``config.train.checkpoint``;
        ``options`` go to the constructor (loggers, callbacks, progress, echo, or a ``monitor`` and
        ``mode`` other than ``config.train.checkpoint``'s).
        """
        from trainflow import registry
        from trainflow.metrics import build_metrics
        from trainflow.models.snapshot import build_model

        t = config.train
        distributed.setup(t.distributed, t.device)  # under torchrun: shard before counting steps
        train_loader = distributed.shard_loader(train_loader, train=True, report=options.get("echo", print))
        model = build_model(config, info)
        criterion = registry.losses.build(config.loss, task=info.task)
        optimizer = registry.optimizers.build(t.optimizer, params=model.parameters())
        if steps_per_epoch is None:
            steps_per_epoch = math.ceil(len(train_loader) / t.grad_accum_steps)  # type: ignore[arg-type]
        scheduler = registry.schedulers.build(
            t.scheduler,
            optimizer=optimizer,
            steps_per_epoch=steps_per_epoch,
            max_epochs=t.max_epochs,
            interval=t.scheduler_interval,
        )
        callbacks = list(options.pop("callbacks", ()))
        if t.early_stopping.patience:
            es = t.early_stopping
            callbacks.append(EarlyStopping(es.monitor, es.mode, es.patience, es.min_delta))
        if checkpoint_dir is not None:
            c = t.checkpoint
            callbacks.append(
                Checkpoint(
                    checkpoint_dir,
                    every_n_epochs=c.every_n_epochs,
                    every_n_steps=c.every_n_steps,
                    keep_last=c.keep_last,
                    keep_every_n_epochs=c.keep_every_n_epochs,
                )
            )
        return cls(
            model,
            train_loader,
            val_loader,
            test_loader,
            optimizer,
            criterion,
            max_epochs=t.max_epochs,
            scheduler=scheduler,
            scheduler_interval=t.scheduler_interval,
            metrics=build_metrics(config.metrics, info),
            monitor=options.pop("monitor", t.checkpoint.monitor),
            mode=options.pop("mode", t.checkpoint.mode),
            callbacks=callbacks,
            grad_accum_steps=t.grad_accum_steps,
            clip_grad_norm=t.clip_grad_norm,
            clip_grad_value=t.clip_grad_value,
            precision=t.precision,
            device=t.device,
            compile=t.compile,
            deterministic=t.deterministic,
            config=config,
            build={"info": info.to_dict(), "steps_per_epoch": steps_per_epoch},
            **options,
        )

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        train_loader: Iterable[Any] | None = None,
        val_loader: Iterable[Any] | None = None,
        test_loader: Iterable[Any] | None = None,
        **options: Any,
    ) -> Trainer:
        """Rebuild model, optimizer, scheduler and training state from the config stored in the
        checkpoint at ``path`` (lis2's from_snapshot). Give loaders to train or evaluate further.

        The stored config imports nothing: import the modules that register a plug-in model
        (or other component) before calling this; the error names them otherwise."""
        from trainflow.config import resolve
        from trainflow.data.datasets import DatasetInfo

        path = Path(path)
        payload = load_checkpoint(path)
        build = payload["model"].get("build") or {}
        if payload.get("config") is None or "info" not in build:
            raise CheckpointError(
                f"{path}: written by a Trainer without a config; rebuild the model and optimizer yourself "
                f"and call fit(resume={str(path)!r})"
            )
        config = resolve(payload["config"], source=f"{path} (stored config)", plugins=False)
        info = DatasetInfo.from_dict(build["info"])
        trainer = cls.from_config(
            config,
            info,
            train_loader,
            val_loader,
            test_loader,
            steps_per_epoch=int(build["steps_per_epoch"]),
            **options,
        )
        trainer.load_checkpoint_state(payload)
        trainer.resumed_from = path
        return trainer

    # ------------------------------------------------------------------------------------------
    # Internals

    def _epoch_batches(self) -> Iterator[Any]:
        """The iterator over this epoch's batches, positioned after the batches already done."""
        resume, self._resume_epoch = self._resume_epoch, None
        self._break_epoch = False
        if resume is not None:
            set_rng_state(resume["epoch_start"])
        else:
            self.state.batch_in_epoch = 0
            self._loss_sum.zero_()
            self._loss_batches = 0
        self._epoch_rng = get_rng_state()
        self._call("on_epoch_start")
        loader = self.train_loader
        if loader is None:
            raise ValueError("fit(): the Trainer has no train_loader")
        _set_epoch(loader, self.state.epoch)
        skip = 0
        if resume is not None:
            if resume["loader"] is not None and callable(getattr(loader, "load_state_dict", None)):
                loader.load_state_dict(resume["loader"])  # type: ignore[attr-defined]
            else:
                skip = self.state.batch_in_epoch
        iterator = iter(loader)
        for done in range(skip):
            if next(iterator, None) is None:
                raise CheckpointError(
                    f"the checkpoint is {skip} batches into epoch {self.state.epoch + 1} but the loader "
                    f"has only {done}; resume with the same data and batch size"
                )
        if resume is not None:
            set_rng_state(resume["current"])
        return iterator

    def _end_epoch(self, record: dict[str, float]) -> None:
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(record[self.monitor])
            else:
                self.scheduler.step()
        s = self.state
        s.epoch += 1
        s.batch_in_epoch = 0
        self.epochs_run += 1
        value = record.get(self.monitor)
        if value is not None and math.isfinite(value) and _improves(value, s.best_value, self.mode):
            s.best_value, s.best_epoch = float(value), s.epoch
        s.history.append(record)
        self._call("on_epoch_end", record)
        self._sync_stop()

    def _sync_stop(self) -> None:
        """Make every process take the same stop decision: a stop any of them requests stops all
        at this batch (a process leaving the loop alone would leave the others waiting in DDP)."""
        if self.world_size == 1:
            return
        stop, now, mid, final = distributed.count_true(
            self.should_stop, self._break_epoch, self.stopped_mid_epoch, not self.stop_resumable
        )
        if 0 < stop < self.world_size:  # the same counts everywhere, so every process joins this
            self.stop_reason = distributed.first_object(self.stop_reason)
        self.should_stop, self._break_epoch, self.stopped_mid_epoch = stop > 0, now > 0, mid > 0
        self.stop_resumable = final == 0

    def _training_forward(self) -> Callable[[Any], Any]:
        """What :meth:`train_step` calls during a fit: the model (compiled when asked), wrapped in
        DDP when several processes train it."""
        if self.world_size == 1:
            return self._plain_forward
        wrapped = distributed.wrap_model(self.model, self.device)
        return wrapped if self._compile is None else torch.compile(wrapped, **self._compile)

    def _call(self, hook: str, *args: Any) -> None:
        for method in self._hooks[hook]:
            method(self, *args)

    def _hook_table(self) -> dict[str, list[Callable[..., None]]]:
        active = [c for c in self.callbacks if self.is_main_process or not getattr(c, "main_process_only", False)]
        return {hook: hook_methods(active, hook) for hook in HOOKS}

    def _reset_stop(self) -> None:
        self.interrupted = False
        self.should_stop = False
        self.stop_reason: str | None = None
        self.stop_resumable = True
        self.stopped_mid_epoch = False
        self._break_epoch = False

    def _to_device(self, batch: Any) -> Any:
        if not self._move_batches:
            return batch
        return tuple(
            item.to(self.device, non_blocking=True) if isinstance(item, torch.Tensor) else item for item in batch
        )

    def _split_metrics(self, metrics: Mapping[str, Any] | None) -> dict[str, Any]:
        if metrics is None:
            return {}
        from torchmetrics import MetricCollection

        collection = metrics if isinstance(metrics, MetricCollection) else MetricCollection(dict(metrics))
        return {"val": collection.to(self.device), "test": collection.clone().to(self.device)}

    def _stateful_callbacks(self) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        seen: dict[str, int] = {}
        for callback in self.callbacks:
            if callable(getattr(callback, "state_dict", None)) and callable(getattr(callback, "load_state_dict", None)):
                name = type(callback).__name__
                seen[name] = seen.get(name, 0) + 1
                found.append((name if seen[name] == 1 else f"{name}#{seen[name]}", callback))
        return found

    def _checkpoint_folder(self) -> Path | None:
        return next((c.folder for c in self.callbacks if isinstance(c, Checkpoint)), None)

    def _drop_newer(self, path: Path) -> None:
        """Delete checkpoint files past ``path`` in its folder: they were unreadable (reported)."""
        position = parse_name(path.name)
        if position is None:
            return
        for other in list_checkpoints(path.parent):
            other_position = parse_name(other.name)
            if other_position is not None and other_position > position:
                other.unlink(missing_ok=True)
                self.echo(f"removed unreadable checkpoint {other}")


def _quiet(line: str) -> None:
    """The echo of processes other than the main one: one copy of each message is enough."""


def _improves(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value < best if mode == "min" else value > best)


def _set_epoch(loader: Any, epoch: int) -> None:
    """Tell the loader (or its sampler, e.g. DistributedSampler) which epoch is starting."""
    for target in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if target is not None and callable(getattr(target, "set_epoch", None)):
            target.set_epoch(epoch)
            return


def _to_dict(config: Any) -> dict[str, Any]:
    from trainflow.config import to_dict

    return to_dict(config)


def _fingerprint(config: Config | None) -> str | None:
    if config is None:
        return None
    from trainflow.config import training_fingerprint

    return training_fingerprint(config)


def _config_change(stored: Mapping[str, Any] | None, config: Config | None) -> str:
    """What differs between a checkpoint's config and ``config``, in the keys that affect training."""
    if stored is None or config is None:
        return "one of them has no config"
    from trainflow.config import NON_TRAINING_SECTIONS, RESUMABLE_KEYS, diff, to_dict

    changes = {
        key: values
        for key, values in diff(stored, to_dict(config)).items()
        if key not in RESUMABLE_KEYS and key.split(".")[0] not in NON_TRAINING_SECTIONS
    }
    if not changes:
        return "the code's training fingerprint changed"
    shown = [f"{key} {old!r} -> {new!r}" for key, (old, new) in list(changes.items())[:5]]
    more = f" and {len(changes) - 5} more" if len(changes) > 5 else ""
    return ", ".join(shown) + more

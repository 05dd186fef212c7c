"""The Trainer: a training loop for any ``nn.Module``, loader, optimizer and loss.

    trainer = Trainer(model, train_loader, val_loader, test_loader, optimizer, criterion)
    model = trainer.fit(num_epochs=10)

The Trainer decides *when* (epochs, steps, validation, checkpoints, stopping); the problem decides
*what*: :meth:`Trainer.compute_loss` returns ``problem.compute_loss(model, batch) -> (loss,
outputs)``. The default problem reads batches ``(inputs, targets)`` with the loss
``criterion(model(inputs), targets)``, so plain PyTorch code needs no change; a new problem type
is registered (:mod:`trainflow.problems`), never patched in here. Everything else is a callback
(:mod:`trainflow.training.callbacks`). Device, DDP, precision and compile come from one
:func:`~trainflow.training.accelerator.prepare` call; the checkpoint payload is
:mod:`~trainflow.training.train_state`'s; building from a config is :mod:`trainflow.build`'s.

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
                    train_step(batch): compute_loss(batch) under autocast -> (loss, outputs);
                                       backward of loss / grad_accum_steps
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
            _end_epoch(record): scheduler.step() when scheduler_interval == "epoch";
                state.epoch += 1; state.batch_in_epoch = 0; update state.best_*; state.history.append(record)
                on_epoch_end(trainer, record)     # record: epoch, train/loss, val/loss, val/<metric>, ...
        test(): evaluate test_loader (when given and an epoch ran); on_test_end(trainer, metrics)
        on_fit_end(trainer)
        (on any exception: on_exception(trainer, error), then the exception propagates)

Exact resume (bit-identical on CPU to a run never stopped, mid-epoch included): see
:mod:`trainflow.training.train_state`.

Distributed (torchrun, ``WORLD_SIZE`` > 1): the loaders are sharded and a DDP wrapper trains
(:mod:`trainflow.training.distributed`); ``main_process_only`` callbacks (the writers) run on
rank 0 alone; loss sums go through ``reduce_sum``, metrics through torchmetrics' own sync; after
every batch and epoch the processes agree on stop requests (:func:`~trainflow.training.stopping.sync_stop`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from trainflow.errors import ConfigError, DataError
from trainflow.problems.base import Problem, SupervisedProblem
from trainflow.training import distributed, train_state
from trainflow.training.accelerator import Precision, prepare
from trainflow.training.callbacks import default_callbacks
from trainflow.training.hooks import better, hook_table
from trainflow.training.loaders import set_epoch
from trainflow.training.seeding import RngState, configure_determinism, get_rng_state, set_rng_state
from trainflow.training.stopping import report_stop, stop_on_interrupt, sync_stop
from trainflow.training.train_state import TrainState

if TYPE_CHECKING:
    import torchmetrics

    from trainflow.config import Config
    from trainflow.data.datasets import DatasetInfo

__all__ = ["TrainState", "Trainer"]


class Trainer:
    """Trains ``model`` on ``train_loader`` with ``optimizer`` and ``criterion`` (or ``problem``).

    Options: ``problem`` (what a batch means and its loss; default: ``criterion`` on ``(inputs,
    targets)``); ``scheduler`` stepped per ``scheduler_interval`` ("epoch" or "step"); ``metrics``
    (torchmetrics, a dict or MetricCollection) computed on validation and test; ``monitor`` /
    ``mode`` the metric that defines the best epoch; ``grad_accum_steps``; ``clip_grad_norm`` /
    ``clip_grad_value`` (0: off); ``precision``, ``device``, ``compile`` (see
    :mod:`~trainflow.training.accelerator`); ``deterministic`` (True/False sets torch's
    deterministic mode, None leaves it alone); ``checkpoint_dir`` (adds a :class:`Checkpoint`
    callback with its defaults); ``end_save_dir`` (adds :class:`EndSave`); ``loggers``;
    ``progress`` ("auto", "bar", "lines" or "off"); ``config`` / ``build`` (the experiment
    config and what rebuilds the model, stored in checkpoints for :meth:`from_checkpoint`; the
    config's training fingerprint guards resumes).
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
        problem: Problem | None = None,
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
        if optimizer is None or (criterion is None and problem is None):
            raise TypeError("Trainer needs an optimizer and a criterion (loss function) or a problem")
        self.accelerator = prepare(
            device=device,
            precision=precision,
            compile=compile,
            settings=config.train.distributed if config is not None else None,
        )
        self.world_size, self.device = self.accelerator.world_size, self.accelerator.device
        self.scaler, self.precision = self.accelerator.scaler, precision
        self.model = model.to(self.device)
        shard = self.accelerator.shard
        self.train_loader = shard(train_loader, train=True, report=echo)
        self.val_loader = shard(val_loader, train=False, report=echo)
        self.test_loader = shard(test_loader, train=False, report=echo)
        self.optimizer, self.criterion, self.scheduler = optimizer, criterion, scheduler
        self.problem = problem if problem is not None else SupervisedProblem(criterion=criterion)  # type: ignore[arg-type]
        self.scheduler_interval, self.max_epochs = scheduler_interval, max_epochs or 0
        self.monitor, self.mode = monitor, mode
        self.grad_accum_steps = grad_accum_steps
        self.clip_grad_norm, self.clip_grad_value = clip_grad_norm, clip_grad_value
        self.deterministic = deterministic
        self.config, self.build = config, dict(build or {})
        self.echo = echo if distributed.is_main_process() else _quiet
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self._plain_forward = self.accelerator.forward(model)  # evaluation; training too, except under DDP
        self._forward = self._plain_forward
        self._metrics = self.accelerator.place_metrics(metrics)

        self.loggers = list(loggers)
        self.callbacks: list[Any] = default_callbacks(
            callbacks,
            checkpoint_dir=checkpoint_dir,
            end_save_dir=end_save_dir,
            loggers=self.loggers,
            log_every_n_steps=log_every_n_steps,
            progress=progress,
        )
        self.state = TrainState()
        self.fingerprint = train_state.fingerprint(config)
        self.test_results: dict[str, float] | None = None
        self.resumed_from: Path | None = None
        self.epochs_run = 0
        self._accumulated = 0
        self._loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self._loss_batches = 0
        self._epoch_rng: RngState | None = None
        self._resume_epoch: dict[str, Any] | None = None
        self._reset_stop()
        self._hooks = hook_table(self.callbacks, self.is_main_process)

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
        self._hooks = hook_table(self.callbacks, self.is_main_process)
        self.epochs_run = 0
        if self.state.epoch >= self.max_epochs:
            self.echo(f"training already finished: {self.state.epoch} of {self.max_epochs} epochs done; nothing to do")
        try:
            self._forward = self.accelerator.training_forward(self.model, self._plain_forward)
            with stop_on_interrupt(self):
                self._call("on_fit_start")
                sync_stop(self)
                while self.state.epoch < self.max_epochs and not self.should_stop:
                    train_metrics = self.train_epoch()
                    if self.stopped_mid_epoch:
                        break
                    self._end_epoch({"epoch": self.state.epoch + 1, **train_metrics, **self.validate()})
            report_stop(self)
            if self.test_loader is not None and self.epochs_run and not self.interrupted:
                self.test()
            self._call("on_fit_end")
        except BaseException as error:
            self._call("on_exception", error)
            raise
        finally:  # a DDP wrapper lives for one fit: it must be gone before the process group is destroyed
            self._forward = self._plain_forward
        return self.model

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
            sync_stop(self)
            if self._break_epoch:
                break
        if self.stopped_mid_epoch:
            return {}
        if not self._loss_batches:
            raise DataError("the training loader yielded no batches; check the train split and batch size")
        if self._accumulated:
            self.optimizer_step()
        return {"train/loss": float(self.reduce_sum(self._loss_sum) / self.reduce_sum(self._loss_batches))}

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
        set_epoch(loader, self.state.epoch)
        if resume is None:
            return iter(loader)
        return train_state.resume_batches(loader, resume, self.state.epoch, self.state.batch_in_epoch)

    def compute_loss(self, batch: Any, forward: Callable[[Any], Any] | None = None) -> tuple[torch.Tensor, Any]:
        """``(loss, outputs)`` of one batch (already on the device): the problem's loss step.
        Override it, or pass a ``problem``, for a loss that is not ``criterion(model(x), y)``."""
        return self.problem.compute_loss(self._forward if forward is None else forward, batch)

    def train_step(self, batch: Any) -> torch.Tensor:
        """Forward and backward of one batch; steps the optimizer every ``grad_accum_steps`` batches."""
        batch = self.accelerator.to_device(batch)
        with self.accelerator.autocast():
            loss, _ = self.compute_loss(batch)
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
        if value is not None and math.isfinite(value) and better(value, s.best_value, self.mode):
            s.best_value, s.best_epoch = float(value), s.epoch
        s.history.append(record)
        self._call("on_epoch_end", record)
        sync_stop(self)

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
            batch = self.accelerator.to_device(batch)
            with self.accelerator.autocast():  # the plain forward: no DDP collectives per batch
                loss, outputs = self.compute_loss(batch, forward=self._plain_forward)
            size = self.problem.batch_size(batch)
            total += loss.detach() * size
            count += size
            if metrics is not None:
                preds, target = self.problem.metric_inputs(outputs, batch)
                low_precision = preds.dtype in (torch.float16, torch.bfloat16)
                metrics.update(preds.float() if low_precision else preds, target)
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
    # State: checkpoints and resume (the payload is train_state's)

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything a resume needs (see :func:`trainflow.training.train_state.capture`)."""
        return train_state.capture(self)

    def load_checkpoint_state(self, payload: Mapping[str, Any]) -> None:
        """Restore what :meth:`checkpoint_state` captured (model, optimizer, RNG, position, ...)."""
        train_state.restore(self, payload)

    def resume(self, source: bool | str | Path = True) -> bool:
        """Load the checkpoint ``source`` names (see :meth:`fit`); True when one was loaded."""
        return train_state.resume(self, source)

    @classmethod
    def from_config(cls, config: Config, info: DatasetInfo, *loaders: Iterable[Any] | None, **options: Any) -> Trainer:
        """A Trainer built from the registries: see :func:`trainflow.build.build_trainer`."""
        from trainflow.build import build_trainer

        return build_trainer(config, info, *loaders, **options)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *loaders: Iterable[Any] | None, **options: Any) -> Trainer:
        """A Trainer rebuilt from a checkpoint's config: see :func:`trainflow.build.trainer_from_checkpoint`."""
        from trainflow.build import trainer_from_checkpoint

        return trainer_from_checkpoint(path, *loaders, **options)

    # ------------------------------------------------------------------------------------------
    # Internals

    def _call(self, hook: str, *args: Any) -> None:
        for method in self._hooks[hook]:
            method(self, *args)

    def _reset_stop(self) -> None:
        self.interrupted = False
        self.should_stop = False
        self.stop_reason: str | None = None
        self.stop_resumable = True
        self.stopped_mid_epoch = False
        self._break_epoch = False


def _quiet(line: str) -> None:
    """The echo of processes other than the main one: one copy of each message is enough."""

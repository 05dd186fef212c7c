"""Config -> Trainer: the one place on the training side that reads a Config and the registries.

The Trainer knows nothing of params.yaml: it takes a model, loaders, an optimizer and a loss
(or a problem). This module builds those from a :class:`~trainflow.config.Config` and a data
set's :class:`~trainflow.data.datasets.DatasetInfo`:

* :func:`build_model` (from :mod:`trainflow.models.snapshot`, which rebuilds snapshots with it),
  :func:`build_problem`, :func:`build_callbacks`: the pieces;
* :func:`build_trainer`: all of them wired into a Trainer (``Trainer.from_config``);
* :func:`trainer_from_checkpoint`: the same, from the config a checkpoint stores
  (``Trainer.from_checkpoint``, lis2's from_snapshot);
* :func:`make_loader`, :func:`monitors`, :func:`build_loggers`: what the train stage adds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from trainflow import registry
from trainflow.config import CheckpointConfig, Config, experiment_id
from trainflow.config_checks import computed_metrics
from trainflow.errors import CheckpointError, ConfigError
from trainflow.models.snapshot import build_model
from trainflow.paths import HISTORY_FILE, TRAIN_METRICS_FILE
from trainflow.problems import Problem, ProblemConfig
from trainflow.training import distributed
from trainflow.training.callbacks import Checkpoint, EarlyStopping
from trainflow.training.checkpoint import load_checkpoint
from trainflow.training.loaders import InMemoryLoader
from trainflow.training.loggers import CSVLogger, JSONLogger
from trainflow.training.seeding import make_generator, seed_worker
from trainflow.training.trainer import Trainer

if TYPE_CHECKING:
    from trainflow.data.datasets import DatasetInfo
    from trainflow.paths import ProjectPaths

SUMMARY_FILE = TRAIN_METRICS_FILE  # metrics/train.json: the best and last epoch's metrics


def build_problem(info: DatasetInfo, criterion: Callable[[Any, Any], torch.Tensor]) -> Problem:
    """The problem type registered under the data set's task, computing its loss with ``criterion``."""
    return registry.problems.build(ProblemConfig(name=info.task), criterion=criterion)


def build_callbacks(config: Config, checkpoint_dir: str | Path | None) -> list[Any]:
    """Early stopping (when ``train.early_stopping.patience`` > 0) and, with ``checkpoint_dir``,
    a :class:`Checkpoint` set by ``train.checkpoint``."""
    t, callbacks = config.train, []
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
    if os.environ.get("TRAINFLOW_SWEEP_TRIAL"):  # a `trainflow sweep` trial reports each epoch to its study
        from trainflow.sweep.pruning import trial_pruning_callback

        callbacks.append(trial_pruning_callback())
    return callbacks


def build_trainer(
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
    """Model, problem (loss), optimizer, scheduler, metrics and callbacks from the registries.

    ``config.train`` supplies the options; ``info`` (the data set) sizes the model and the
    metrics and picks the problem type. ``checkpoint_dir`` adds a :class:`Checkpoint` set by
    ``config.train.checkpoint``; ``options`` go to the Trainer (loggers, callbacks, progress,
    echo, or a ``monitor`` and ``mode`` other than ``config.train.checkpoint``'s).
    """
    from trainflow.metrics import build_metrics

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
    callbacks = [*options.pop("callbacks", ()), *build_callbacks(config, checkpoint_dir)]
    return Trainer(
        model,
        train_loader,
        val_loader,
        test_loader,
        optimizer,
        criterion,
        problem=build_problem(info, criterion),
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


def trainer_from_checkpoint(
    path: str | Path,
    train_loader: Iterable[Any] | None = None,
    val_loader: Iterable[Any] | None = None,
    test_loader: Iterable[Any] | None = None,
    **options: Any,
) -> Trainer:
    """Rebuild model, optimizer, scheduler and training state from the config stored in the
    checkpoint at ``path``. Give loaders to train or evaluate further.

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
    steps = int(build["steps_per_epoch"])
    trainer = build_trainer(config, info, train_loader, val_loader, test_loader, steps_per_epoch=steps, **options)
    trainer.load_checkpoint_state(payload)
    trainer.resumed_from = path
    return trainer


def make_loader(config: Config, x: np.ndarray, y: np.ndarray, shuffle: bool) -> Any:
    """Batches of ``(x, y)`` as ``train.loader`` says: indexed in memory, or a seeded DataLoader."""
    inputs, targets = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
    t = config.train
    if t.loader == "memory":
        return InMemoryLoader(inputs, targets, batch_size=t.batch_size, shuffle=shuffle, seed=config.seed)
    return DataLoader(
        TensorDataset(inputs, targets),
        batch_size=t.batch_size,
        shuffle=shuffle,
        num_workers=t.num_workers,
        worker_init_fn=seed_worker,
        generator=make_generator(config.seed),
        persistent_workers=False,
    )


def monitors(config: Config) -> tuple[str, str]:
    """The metric and mode that pick ``models/best.pt``, after checking both monitored keys.

    A monitor must be a metric this run computes, else the stage fails before any work. One
    exception: ``train.checkpoint.monitor`` left at its default (``val/accuracy``) in a run
    that computes no accuracy (a regression) picks the best epoch by ``val/loss`` instead.
    """
    known = computed_metrics(config)
    stopping = config.train.early_stopping
    if stopping.patience and stopping.monitor not in known:
        raise ConfigError(
            f"train.early_stopping.monitor: {stopping.monitor!r} is not computed by this run; valid: {', '.join(known)}"
        )
    checkpoint, default = config.train.checkpoint, CheckpointConfig()
    if checkpoint.monitor in known:
        return checkpoint.monitor, checkpoint.mode
    if (checkpoint.monitor, checkpoint.mode) == (default.monitor, default.mode):
        if distributed.is_main_process():
            print(f"train: {default.monitor} is not computed by this run; models/best.pt is the best epoch by val/loss")
        return "val/loss", "min"
    raise ConfigError(
        f"train.checkpoint.monitor: {checkpoint.monitor!r} is not computed by this run; valid: {', '.join(known)}"
    )


def build_loggers(config: Config, paths: ProjectPaths) -> list[Any]:
    """The CSV history and JSON summary (the stage's DVC outputs) plus the configured extras."""
    loggers: list[Any] = [CSVLogger(paths.plots / HISTORY_FILE), JSONLogger(paths.metrics / SUMMARY_FILE)]
    run_dir = paths.runs / experiment_id(config)  # one TensorBoard run per experiment, side by side
    targets = {"tensorboard": run_dir, "npy": run_dir / "history"}
    for name in config.loggers:
        if name in ("csv", "json"):
            continue  # always written, above
        entry = registry.loggers.get(name, key="loggers")
        loggers.append(registry.loggers.build(entry.config_class(name=name), path=targets.get(name, run_dir / name)))
    return loggers

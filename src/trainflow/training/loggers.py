"""Loggers: where the numbers of a run go. Several can run at once.

A logger is any object with some of these methods (:class:`Logger` gives no-op defaults):

* ``start(trainer)``: once, before the first epoch of a fit that has work to do;
* ``log_scalars(values, step)``: step-level scalars (loss every N steps, learning rate, gradient
  norms) at optimizer step ``step`` (1-based: the number of steps done);
* ``log_epoch(record, trainer)``: after each epoch, ``record`` holds ``epoch`` (1-based) and the
  epoch's metrics (``train/loss``, ``val/loss``, ``val/<metric>``); ``trainer.state.history``
  holds every epoch of the run so far, resumed ones included;
* ``finish(trainer)``: once, at the end of the fit.

Built in, and registered in ``trainflow.registry.loggers`` for ``loggers: [...]`` in params.yaml:

* ``tensorboard``: TensorBoard event files through tensorboardX (scalars against the optimizer
  step, and the run's hyper-parameters with its best metric at the end);
* ``csv``: one row per epoch (``epoch,train_loss,val_loss,val_accuracy,...``) for DVC plots;
* ``json``: a small summary (best and last epoch's metrics) for DVC metrics;
* ``npy``: one ``.npy`` array per metric over the epochs (dwi_ml's history).

The CSV, JSON and npy files are rewritten whole (atomically, without fsync) from the history after
every epoch, so a resumed run ends with the same files as one never interrupted, and they hold no
timings, so two identical runs write identical bytes. :class:`MemoryLogger` keeps everything in lists.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from trainflow.components.loggers import CSVConfig, JSONConfig, NpyConfig, TensorBoardConfig
from trainflow.config import flatten, to_dict
from trainflow.io import atomic_write
from trainflow.training.callbacks import Callback
from trainflow.training.events import every

if TYPE_CHECKING:
    from trainflow.training.trainer import Trainer


def _replace_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically, without fsync: these files are rewritten every epoch and can be
    regenerated from the checkpoint, so readers need whole files, not durable ones."""
    atomic_write(path, lambda file: file.write(data), fsync=False)


def column_name(key: str) -> str:
    """``"val/accuracy"`` -> ``"val_accuracy"``: metric keys as CSV columns and file names."""
    return key.replace("/", "_")


def nest(record: Mapping[str, Any]) -> dict[str, Any]:
    """``{"val/loss": 1.0, "epoch": 3}`` -> ``{"val": {"loss": 1.0}, "epoch": 3}`` (DVC metrics style)."""
    nested: dict[str, Any] = {}
    for key, value in record.items():
        node = nested
        *parents, leaf = key.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


class Logger:
    """Optional base class with no-op methods; see the module docstring for when each is called."""

    def start(self, trainer: Trainer) -> None: ...
    def log_scalars(self, values: Mapping[str, float], step: int) -> None: ...
    def log_epoch(self, record: Mapping[str, float], trainer: Trainer) -> None: ...
    def finish(self, trainer: Trainer) -> None: ...


class MemoryLogger(Logger):
    """Keeps every logged value in memory: ``scalars`` as ``(step, name, value)``, ``epochs`` as records."""

    def __init__(self) -> None:
        self.scalars: list[tuple[int, str, float]] = []
        self.epochs: list[dict[str, float]] = []
        self.started = 0
        self.finished = 0

    def start(self, trainer: Trainer) -> None:
        self.started += 1

    def log_scalars(self, values: Mapping[str, float], step: int) -> None:
        self.scalars.extend((step, name, float(value)) for name, value in values.items())

    def log_epoch(self, record: Mapping[str, float], trainer: Trainer) -> None:
        self.epochs.append(dict(record))

    def finish(self, trainer: Trainer) -> None:
        self.finished += 1


class CSVLogger(Logger):
    """``path``: one row per epoch, columns ``epoch`` then each metric with ``/`` turned into ``_``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def log_epoch(self, record: Mapping[str, float], trainer: Trainer) -> None:
        _replace_file(self.path, history_csv(trainer.state.history).encode())


def history_csv(history: Sequence[Mapping[str, float]]) -> str:
    """The history as CSV text; values are written with ``repr`` (exact and deterministic)."""
    columns: list[str] = []
    for record in history:
        columns += [key for key in record if key not in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([column_name(key) for key in columns])
    for record in history:
        writer.writerow([_cell(record.get(key)) for key in columns])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class JSONLogger(Logger):
    """``path``: ``{"epochs", "best_epoch", "monitor", "stopped_early", "best": {...}, "last": {...}}``
    plus ``"test"`` when the fit ran a test loader; metric keys nested by split for DVC."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _write(self, trainer: Trainer) -> None:
        _replace_file(self.path, (json.dumps(summary(trainer), indent=2, sort_keys=True) + "\n").encode())

    def log_epoch(self, record: Mapping[str, float], trainer: Trainer) -> None:
        self._write(trainer)

    def finish(self, trainer: Trainer) -> None:
        self._write(trainer)


def _json_number(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else str(value)


def summary(trainer: Trainer) -> dict[str, Any]:
    """Best and last epoch's metrics of ``trainer`` as small nested JSON-safe data."""
    history = trainer.state.history
    best_epoch = trainer.state.best_epoch
    best = next((r for r in history if r.get("epoch") == best_epoch), None)

    def clean(record: Mapping[str, Any] | None) -> dict[str, Any]:
        return nest({k: _json_number(v) for k, v in (record or {}).items() if k != "epoch"})

    data: dict[str, Any] = {
        "epochs": trainer.state.epoch,
        "best_epoch": best_epoch,
        "monitor": trainer.monitor,
        "stopped_early": trainer.stopped_early,
        "best": clean(best),
        "last": clean(history[-1] if history else None),
    }
    if trainer.test_results:
        data["test"] = clean(trainer.test_results).get("test", {})
    return data


class NpyLogger(Logger):
    """``folder/<metric>.npy``: float64 arrays over the epochs (``epoch.npy`` holds the epoch numbers)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def log_epoch(self, record: Mapping[str, float], trainer: Trainer) -> None:
        history = trainer.state.history
        keys: list[str] = []
        for item in history:
            keys += [key for key in item if key not in keys]
        for key in keys:
            values = np.array([item.get(key, np.nan) for item in history], dtype=np.float64)
            atomic_write(self.folder / f"{column_name(key)}.npy", lambda file, v=values: np.save(file, v), fsync=False)


class TensorBoardLogger(Logger):
    """TensorBoard event files in ``folder`` through tensorboardX.

    Scalars are plotted against the optimizer step. On a resume, events that the interrupted run
    wrote after the checkpoint are purged (``purge_step``) so curves do not fold back. At the end
    the run's hyper-parameters (the flat resolved config, when the trainer has one) are written
    with the best monitored value, for TensorBoard's HParams view.
    """

    def __init__(self, folder: str | Path, flush_secs: int = 30) -> None:
        self.folder = Path(folder)
        self.flush_secs = flush_secs
        self.writer: Any = None

    def start(self, trainer: Trainer) -> None:
        from tensorboardX import SummaryWriter

        step = trainer.state.global_step
        self.writer = SummaryWriter(
            logdir=str(self.folder),
            flush_secs=self.flush_secs,
            purge_step=step + 1 if step else None,
            # event files are named by the second they were opened in: keep a quick resume's apart
            filename_suffix=f".{os.getpid()}.s{step}",
        )

    def log_scalars(self, values: Mapping[str, float], step: int) -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, float(value), step)

    def log_epoch(self, record: Mapping[str, float], trainer: Trainer) -> None:
        if self.writer is not None:
            step = trainer.state.global_step
            for name, value in record.items():
                self.writer.add_scalar(name, float(value), step)

    def finish(self, trainer: Trainer) -> None:
        if self.writer is None:
            return
        if trainer.config is not None and trainer.state.best_value is not None:
            hparams = {
                key: value
                for key, value in flatten(to_dict(trainer.config)).items()
                if isinstance(value, (bool, int, float, str))
            }
            metric = f"hparam/{trainer.monitor}"
            self.writer.add_hparams(hparams, {metric: trainer.state.best_value}, name="hparams")
        self.writer.close()
        self.writer = None


class Loggers(Callback):
    """Drives ``loggers`` from the trainer's hooks; also logs ``train/loss_step`` every
    ``log_every_n_steps`` optimizer steps (0: never). Nothing is written by a fit that has nothing
    to do (a finished run resumed), so such a fit leaves every file as it was."""

    order = 90
    main_process_only = True

    def __init__(self, loggers: Sequence[Any], log_every_n_steps: int = 50) -> None:
        self.loggers = list(loggers)
        self.log_every_n_steps = log_every_n_steps
        self._due = every(log_every_n_steps)
        self.active = False

    def on_fit_start(self, trainer: Trainer) -> None:
        self.active = not trainer.nothing_to_do
        if self.active:
            for logger in self.loggers:
                if hasattr(logger, "start"):
                    logger.start(trainer)

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        if trainer.at_step_boundary and self._due(trainer.state.global_step):
            trainer.log({"train/loss_step": float(loss)}, step=trainer.state.global_step)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        for logger in self.loggers:
            if hasattr(logger, "log_epoch"):
                logger.log_epoch(record, trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.active:
            for logger in self.loggers:
                if hasattr(logger, "finish"):
                    logger.finish(trainer)
        self.active = False


# ---------------------------------------------------------------------------------------------
# Registry entries: ``loggers: [tensorboard, csv, json]`` in params.yaml, declared with their config
# classes in trainflow.components.loggers. Each factory takes the path it writes to (a folder for
# tensorboard and npy, a file for csv and json).


def tensorboard(config: TensorBoardConfig, path: Path) -> TensorBoardLogger:
    return TensorBoardLogger(path, flush_secs=config.flush_secs)


def csv_logger(config: CSVConfig, path: Path) -> CSVLogger:
    return CSVLogger(path)


def json_logger(config: JSONConfig, path: Path) -> JSONLogger:
    return JSONLogger(path)


def npy_logger(config: NpyConfig, path: Path) -> NpyLogger:
    return NpyLogger(path)

"""The train stage: the prepared train/val splits and the fitted encoder -> a trained model.

Reads ``data/prepared/`` and ``data/encoders/``; writes

- ``models/best.pt`` (the epoch that was best by ``train.checkpoint.monitor``) and
  ``models/last.pt`` (the final weights): model snapshots that the evaluate stage reads;
- ``models/config.yaml``: the resolved config with its experiment id;
- ``models/checkpoints/``: the resumable training state (persisted across DVC runs);
- ``runs/<experiment-id>/``: TensorBoard event files (timings live there and on stdout only);
- ``metrics/train.json``: the best and last epoch's metrics (DVC metrics);
- ``plots/history.csv``: one row per epoch, ``epoch,train_loss,val_loss,val_<metric>...``
  (DVC plots).

Re-running the stage continues from the newest readable checkpoint whose training fingerprint
matches the config; ``train.max_epochs`` and ``train.early_stopping.patience`` may be raised for
that. A finished run reports so and trains no further. Everything written outside ``runs/``
is a pure function of the config and the data: two runs from scratch write identical bytes
(on CPU), and so does an interrupted run once resumed to the end.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributed.elastic.multiprocessing.errors import record

from trainflow.build import (
    HISTORY_FILE,
    SUMMARY_FILE,
    build_loggers,
    build_model,
    build_trainer,
    make_loader,
    monitors,
)
from trainflow.components.datasets import dataset_task
from trainflow.config import Config, save_resolved, training_fingerprint
from trainflow.data.datasets import DatasetInfo
from trainflow.data.prepare import read_prepared, to_arrays
from trainflow.encoders import ENCODER_FILE, load_encoder
from trainflow.errors import TrainflowError
from trainflow.io import atomic_write_text
from trainflow.models.snapshot import save_model_snapshot
from trainflow.numbers import format_metric
from trainflow.paths import BEST_MODEL, LAST_MODEL, RESOLVED_CONFIG, ProjectPaths
from trainflow.runtime import runtime_record
from trainflow.training import distributed, launch
from trainflow.training.callbacks import Checkpoint
from trainflow.training.checkpoint import load_checkpoint
from trainflow.training.loggers import history_csv, summary
from trainflow.training.replay import select_resumable
from trainflow.training.seeding import configure_determinism, seed_everything
from trainflow.training.trainer import Trainer

# the assembly lives in trainflow.build; these names stay importable from the stage
__all__ = ["HISTORY_FILE", "SUMMARY_FILE", "build_loggers", "main", "make_loader", "monitors", "run"]


def run(config: Config, paths: ProjectPaths, resume: bool = True) -> dict[str, Any]:
    """Train (resuming when possible) and write the stage's outputs; returns a short summary.

    One process trains here. More (``train.distributed``: ``nproc_per_node x nnodes`` > 1)
    re-run this stage under torchrun, each worker training its share with DDP and the main
    one writing the outputs (see docs/distributed.md); a restarted worker group always resumes.
    """
    if resume and not distributed.under_torchrun():  # once, before any worker reads checkpoints
        keep_only_resumable(config, paths)
    if launch.needs_launch(config.train.distributed):
        monitors(config)  # a config error stops here, before any process starts
        launch.launch_train(config, paths, resume=resume)
        summary_file = paths.metrics / SUMMARY_FILE  # on the node that wrote the outputs
        written = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        return {"world_size": launch.world_size(config.train.distributed), **written}
    if distributed.under_torchrun():
        return record(train_worker)(config, paths, resume or distributed.restart_count() > 0)
    return train_in_process(config, paths, resume)


class TrainflowInterrupted(TrainflowError):
    """Ctrl-C stopped training at a saved position; the next run resumes from it."""

    exit_code = 130


def keep_only_resumable(config: Config, paths: ProjectPaths) -> None:
    """Shelve checkpoints that a from-scratch run of ``config`` would not pass through (lowered
    max_epochs or patience), and bring back a shelved run it does pass through."""
    t, es = config.train, config.train.early_stopping
    rules = {"max_epochs": t.max_epochs, "monitor": es.monitor, "mode": es.mode, "patience": es.patience}
    rules["min_delta"] = es.min_delta
    select_resumable(
        paths.checkpoints, training_fingerprint(config), rules, echo=lambda line: print(f"train: {line}", flush=True)
    )


def train_worker(config: Config, paths: ProjectPaths, resume: bool) -> dict[str, Any]:
    """One torchrun worker: join the process group, train, leave the group."""
    with distributed.process_group(config.train.distributed):
        return train_in_process(config, paths, resume)


def train_in_process(config: Config, paths: ProjectPaths, resume: bool) -> dict[str, Any]:
    """The training itself, in this process (alone, or as one DDP worker of several)."""
    main_process = distributed.is_main_process()
    monitor, mode = monitors(config)
    t = config.train
    seed_everything(config.seed)
    if t.threads:
        torch.set_num_threads(t.threads)
    configure_determinism(t.deterministic)

    info, arrays, samples = training_arrays(config, paths)
    if main_process:
        print(
            f"train: {config.model.name} on {len(arrays['train'][1])} train / {len(arrays['val'][1])} val {samples}, "
            f"{t.max_epochs} epochs, batch {t.batch_size}, loader {t.loader}",
            flush=True,
        )
    trainer = build_trainer(
        config,
        info,
        make_loader(config, *arrays["train"], shuffle=True),
        make_loader(config, *arrays["val"], shuffle=False),
        checkpoint_dir=paths.checkpoints,
        monitor=monitor,
        mode=mode,
        loggers=build_loggers(config, paths),
        echo=lambda line: print(f"train: {line}", flush=True),
    )
    trainer.fit(resume=resume)
    if trainer.interrupted:
        raise TrainflowInterrupted(
            f"train: interrupted after {trainer.state.global_step} optimizer steps; the checkpoint in "
            f"{paths.checkpoints} holds that position: run `dvc repro` (or `trainflow train`) again to continue"
        )
    if not trainer.stop_resumable:
        raise TrainflowError(f"train: {trainer.stop_reason}; models/ keeps the last good checkpoint")

    best = trainer.state.best_epoch
    if main_process:
        write_outputs(config, info, paths, trainer)
        best_value = "n/a" if trainer.state.best_value is None else format_metric(trainer.state.best_value)
        print(f"train: best epoch {best} by {trainer.monitor} = {best_value}; wrote {paths.models}/")
    return {
        "epochs": trainer.state.epoch,
        "epochs_run": trainer.epochs_run,
        "best_epoch": best,
        "monitor": trainer.monitor,
        "best_value": trainer.state.best_value,
        "resumed_from": str(trainer.resumed_from) if trainer.resumed_from else None,
        "stopped_early": trainer.stopped_early,
    }


def training_arrays(
    config: Config, paths: ProjectPaths
) -> tuple[DatasetInfo, dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """The data set info, the encoded ``(inputs, targets)`` of the train and val splits, and what
    one sample is: a table's rows, or a series' windows (:mod:`trainflow.forecasting.training_data`)."""
    if dataset_task(config.dataset) == "forecasting":
        from trainflow.forecasting.training_data import window_arrays

        info, windows = window_arrays(config, paths)
        return info, windows, "windows"
    splits, info = read_prepared(paths.prepared)
    encoder = load_encoder(paths.encoders / ENCODER_FILE)
    arrays = {}
    for split in ("train", "val"):
        x, y = to_arrays(splits[split], info)
        arrays[split] = (encoder.encode(x).astype(np.float32, copy=False), y)
    return info, arrays, "rows"


def write_outputs(config: Config, info: DatasetInfo, paths: ProjectPaths, trainer: Trainer) -> None:
    """models/{best,last}.pt, models/config.yaml, metrics/train.json and plots/history.csv from the
    trainer's state; a file whose content would not change is left untouched."""
    history = trainer.state.history
    last_record = history[-1] if history else {}
    write_snapshot(paths.models / LAST_MODEL, trainer.model, config, info, trainer.state.epoch, last_record)

    checkpoint = next(c for c in trainer.callbacks if isinstance(c, Checkpoint))
    best_epoch = trainer.state.best_epoch
    if checkpoint.best_path is not None and best_epoch is not None:
        model = build_model(config, info)
        model.load_state_dict(load_checkpoint(checkpoint.best_path)["model"]["state_dict"])
        write_snapshot(paths.models / BEST_MODEL, model, config, info, best_epoch, history[best_epoch - 1])
    else:  # no finite monitored value yet: the last weights are the best there are
        write_snapshot(paths.models / BEST_MODEL, trainer.model, config, info, trainer.state.epoch, last_record)

    staging = paths.models / ".config.yaml.new"
    save_resolved(config, staging, runtime=runtime_record(config.train.threads))
    replace_if_changed(staging, paths.models / RESOLVED_CONFIG)
    write_text_if_changed(paths.plots / HISTORY_FILE, history_csv(history))
    _write_json_if_changed(paths.metrics / SUMMARY_FILE, summary(trainer))


def write_snapshot(
    path: Path, model: torch.nn.Module, config: Config, info: DatasetInfo, epoch: int, record: dict[str, float]
) -> None:
    staging = path.with_name(f".{path.name}.new")
    save_model_snapshot(staging, model, config, info, epoch=epoch, metrics=dict(record))
    replace_if_changed(staging, path)


def replace_if_changed(staging: Path, target: Path) -> None:
    """Move ``staging`` over ``target`` unless both hold the same bytes (then drop ``staging``)."""
    if target.is_file() and target.read_bytes() == staging.read_bytes():
        staging.unlink()
    else:
        os.replace(staging, target)


def write_text_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it holds it already; either way it ends on disk (fsync):
    the loggers wrote it during training without fsync."""
    if path.is_file() and path.read_text() == text:
        fsync_file(path)
    else:
        atomic_write_text(path, text)


def _write_json_if_changed(path: Path, data: dict[str, Any]) -> None:
    write_text_if_changed(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def fsync_file(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trainflow.stages.train [--params P] [--root R] [--no-resume] [key=value ...]``."""
    from trainflow.cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())

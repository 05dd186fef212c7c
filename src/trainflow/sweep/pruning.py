"""Pruning: the train stage of a sweep trial reports its validation metric to the study.

``trainflow sweep`` runs each trial with the study's storage, name and trial number in the
environment (see :mod:`trainflow.sweep.runner`); :func:`trainflow.build.build_callbacks` then
adds :class:`TrialPruning`. After each epoch it reports the monitored value as that epoch's
intermediate value; when the study's pruner says so it stops training (the rest of the
pipeline still runs, so the trial stays a complete DVC experiment) and leaves a marker file by
which the runner records the trial as pruned.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from trainflow.sweep.runner import ENV_MONITOR, ENV_PRUNED_FILE, ENV_PRUNER, ENV_STORAGE, ENV_STUDY, ENV_TRIAL
from trainflow.sweep.spec import Pruner
from trainflow.sweep.study import make_pruner
from trainflow.training.hooks import Callback

if TYPE_CHECKING:
    from trainflow.training.trainer import Trainer


class TrialPruning(Callback):
    """Report ``monitor`` each epoch to trial ``number`` of ``study``; stop when pruned."""

    main_process_only = True
    order = 80  # after early stopping has seen the epoch, before loggers and checkpoints

    def __init__(self, storage: str, study: str, number: int, monitor: str, pruned_file: Path, pruner: Pruner) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.load_study(study_name=study, storage=storage, pruner=make_pruner(pruner))
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number)
        self.trial = optuna.trial.Trial(self.study, trial_id)
        self.monitor, self.pruned_file = monitor, pruned_file

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        if self.monitor not in record:
            return
        self.trial.report(float(record[self.monitor]), trainer.state.epoch)
        if self.trial.should_prune():
            self.pruned_file.write_text(f"{trainer.state.epoch}\n", encoding="utf-8")
            trainer.request_stop(f"sweep: trial pruned at epoch {trainer.state.epoch} ({self.monitor})")


def trial_pruning_callback() -> TrialPruning | None:
    """The callback for the sweep trial this process runs in, or None outside a sweep."""
    if not os.environ.get(ENV_TRIAL):
        return None
    return TrialPruning(
        os.environ[ENV_STORAGE],
        os.environ[ENV_STUDY],
        int(os.environ[ENV_TRIAL]),
        os.environ.get(ENV_MONITOR, "val/loss"),
        Path(os.environ[ENV_PRUNED_FILE]),
        Pruner.model_validate_json(os.environ.get(ENV_PRUNER, "{}")),
    )

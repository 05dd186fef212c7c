"""The closing summary of ``make run``: the test metrics, where every output is, what to try next."""

from __future__ import annotations

import json
from typing import Any

from trainflow.config import Config, experiment_id
from trainflow.errors import TrainflowError
from trainflow.paths import ProjectPaths


def summary_lines(config: Config, paths: ProjectPaths) -> list[str]:
    eval_path = paths.metrics / "eval.json"
    try:
        metrics: dict[str, Any] = json.loads(eval_path.read_text())
    except FileNotFoundError:
        raise TrainflowError(f"{eval_path}: not found; run the pipeline first (dvc repro)") from None
    test = metrics.get("test", {})
    scores = ", ".join(f"{name} {value:.4f}" for name, value in test.items() if isinstance(value, float))
    return [
        f"experiment {experiment_id(config)}: test {scores}",
        f"  model:          {paths.models / 'best.pt'}  (last epoch: {paths.models / 'last.pt'})",
        f"  result package: {paths.results}/  (manifest.json lists every file with its sha256)",
        f"  metrics:        {eval_path}, {paths.metrics / 'train.json'}",
        "next:",
        "  dvc exp run -S train.optimizer.lr=0.003   # an experiment with one param changed",
        "  dvc exp show                              # experiments side by side",
        "  dvc metrics diff                          # metrics against the last commit",
        "  dvc plots show                            # learning curves and confusion matrix (HTML)",
        f"  tensorboard --logdir {paths.runs}                 # training curves",
    ]


def print_summary(config: Config, paths: ProjectPaths) -> None:
    print("\n".join(summary_lines(config, paths)))

"""The closing summary of ``make run`` and of the pipeline flows: the test metrics of the
experiment that produced the outputs, whether they are current, where every output is, what
to try next."""

from __future__ import annotations

import json
from typing import Any

import yaml

from trainflow.config import Config, experiment_id
from trainflow.errors import TrainflowError
from trainflow.numbers import format_metric
from trainflow.paths import ProjectPaths

# `dvc exp show` narrowed to what differs: the changed params beside the test metrics (the train
# summary's best/last values, val metrics and file hashes dropped); the README shows the same.
EXP_SHOW = "dvc exp show --only-changed --drop 'Created|best|last|epochs|val\\.|.*/|evaluation'"


def outputs_experiment(paths: ProjectPaths) -> str | None:
    """The experiment id recorded in ``models/config.yaml`` by the train stage (None if absent)."""
    try:
        data = yaml.safe_load((paths.models / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    value = data.get("experiment_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def summary_lines(config: Config, paths: ProjectPaths) -> list[str]:
    eval_path = paths.metrics / "eval.json"
    try:
        metrics: dict[str, Any] = json.loads(eval_path.read_text())
    except FileNotFoundError:
        raise TrainflowError(f"{eval_path}: not found; run the pipeline first (dvc repro)") from None
    test = metrics.get("test", {})
    scores = ", ".join(f"{name} {format_metric(value)}" for name, value in test.items() if isinstance(value, float))
    scores = scores or forecast_scores(test)
    current = experiment_id(config)
    produced = outputs_experiment(paths) or "unknown"
    lines = [f"experiment {produced}: test {scores}"]
    if produced != current:
        lines.append(
            f"  stale: the outputs are from experiment {produced}, params.yaml now describes {current};"
            " run `dvc repro` to bring them up to date"
        )
    return [
        *lines,
        f"  model:          {paths.models / 'best.pt'}  (last epoch: {paths.models / 'last.pt'})",
        f"  result package: {paths.results}/  (manifest.json lists every file with its sha256)",
        f"  metrics:        {eval_path}, {paths.metrics / 'train.json'}",
        "next:",
        "  dvc exp run -S train.optimizer.lr=0.003   # an experiment with one param changed",
        f"  {EXP_SHOW}   # changed params next to the test metrics",
        "  dvc metrics diff                          # metrics against the last commit",
        "  dvc plots show                            # learning curves and confusion matrix (HTML)",
        f"  tensorboard --logdir {paths.runs}                 # training curves, one run per experiment",
    ]


def forecast_scores(test: Any) -> str:
    """``h4 MASE 0.26 (best baseline holt_winters 0.39), ...`` from a forecasting eval.json's test."""
    parts = []
    horizons = [key for key in test if key[1:].isdigit()] if isinstance(test, dict) else []
    for key in sorted(horizons, key=lambda name: int(name[1:])):
        entry = test[key]
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), dict):
            continue
        baselines = {name: scores.get("mase") for name, scores in entry.items() if name != "model"}
        known = {name: value for name, value in baselines.items() if isinstance(value, float)}
        text = f"{key} MASE {format_metric(entry['model'].get('mase'))}"
        if known:
            best = min(known, key=lambda name: known[name])
            text += f" (best baseline {best} {format_metric(known[best])})"
        parts.append(text)
    return ", ".join(parts)


def print_summary(config: Config, paths: ProjectPaths) -> None:
    print("\n".join(summary_lines(config, paths)))

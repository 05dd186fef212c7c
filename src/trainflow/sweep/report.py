"""A sweep's results: the ranking (markdown and CSV), the best params as a diff, PNG plots.

Everything is written to ``.sweeps/<study>/``: ``ranking.md``, ``ranking.csv``, ``best.diff``
and ``plots/{history,parallel_coordinates,importances}.png`` (Optuna's matplotlib plots).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from trainflow.config import flatten, load_config, to_dict
from trainflow.sweep.spec import SweepSpec
from trainflow.sweep.study import RETRIED, decode


def ranked(spec: SweepSpec, study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials best first, then pruned ones (by their last value), then failed ones."""
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(RETRIED)]
    sign = -1.0 if spec.mode == "max" else 1.0

    def key(trial: FrozenTrial) -> tuple[int, float, int]:
        group = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1}.get(trial.state, 2)
        value = trial.value if trial.value is not None else _last(trial)
        return group, sign * value if value is not None else float("inf"), trial.number

    return sorted((t for t in trials if t.state != TrialState.WAITING), key=key)


def _last(trial: FrozenTrial) -> float | None:
    return trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None


def ranking_rows(spec: SweepSpec, study: optuna.Study) -> list[dict[str, Any]]:
    rows = []
    for rank, trial in enumerate(ranked(spec, study), 1):
        value = trial.value if trial.value is not None else _last(trial)
        rows.append(
            {
                "rank": rank,
                "trial": trial.number,
                "state": trial.state.name.lower(),
                spec.metric: "" if value is None else f"{value:.6g}",
                **{key: json.dumps(v) for key, v in decode(spec, trial.params).items()},
                "experiment": f"{spec.study}-{trial.number}",
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no trials yet\n"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(row.get(col, "")) for col in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def best_values(spec: SweepSpec, study: optuna.Study) -> dict[str, Any]:
    """The best complete trial's searched values, and the ``fixed`` ``dataset.*`` values: the data
    it was best on (a forecasting sweep's ``dataset.name: co2`` goes with its model). Other
    ``fixed`` values are left out: they set the sweep's budget (a few epochs), not a result."""
    complete = [t for t in ranked(spec, study) if t.state == TrialState.COMPLETE]
    if not complete:
        return {}
    data = {key: value for key, value in spec.fixed.items() if key.startswith("dataset.")}
    return {**data, **decode(spec, complete[0].params)}


def best_diff(spec: SweepSpec, study: optuna.Study, params: Path) -> str:
    """``- key: current`` / ``+ key: best`` lines for each value the best trial changes."""
    current = flatten(to_dict(load_config(params)))
    lines = []
    for key, value in best_values(spec, study).items():
        if current.get(key) != value:
            lines += [f"- {key}: {json.dumps(current.get(key))}", f"+ {key}: {json.dumps(value)}"]
    return "\n".join(lines) + "\n" if lines else ""


def plots(study: optuna.Study, folder: Path) -> list[Path]:
    """Optimisation history, parallel coordinates and importances (those the trials allow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    makers = {"history": ovm.plot_optimization_history, "parallel_coordinates": ovm.plot_parallel_coordinate}
    if len(complete) >= 2 and len(study.best_trial.params) >= 1:
        makers["importances"] = ovm.plot_param_importances
    for name, make in makers.items():
        try:
            axes = make(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # e.g. importances when no param varies among the complete trials
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        written.append(path)
    return written


def write_report(spec: SweepSpec, study: optuna.Study, root: Path) -> dict[str, Path]:
    """Write ranking.md, ranking.csv, best.diff and the plots; return their paths by name."""
    import warnings

    folder = spec.study_dir(root)
    rows = ranking_rows(spec, study)
    (folder / "ranking.md").write_text(markdown(rows), encoding="utf-8")
    with (folder / "ranking.csv").open("w", newline="", encoding="utf-8") as out:
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    (folder / "best.diff").write_text(best_diff(spec, study, root / spec.params), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        plotted = plots(study, folder / "plots")
    return {
        "ranking.md": folder / "ranking.md",
        "ranking.csv": folder / "ranking.csv",
        "best.diff": folder / "best.diff",
        **{p.name: p for p in plotted},
    }

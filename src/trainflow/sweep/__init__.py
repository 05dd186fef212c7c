"""Hyperparameter sweeps: one spec (sweep.yaml), an Optuna study, every trial a DVC experiment.

* :mod:`~trainflow.sweep.spec`: the spec's config classes and validation;
* :mod:`~trainflow.sweep.study`: samplers, pruner, proposals, resuming the study;
* :mod:`~trainflow.sweep.runner`: a trial = the pipeline in its own clone, pushed as an experiment;
* :mod:`~trainflow.sweep.pruning`: the train stage's callback that reports to the study;
* :mod:`~trainflow.sweep.report`: ranking, best params as a diff, plots;
* :mod:`~trainflow.sweep.apply_best`: the best values written into params.yaml, comments kept.

``trainflow sweep [--spec sweep.yaml] [--apply-best]`` (:func:`sweep_command`) is the entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainflow.sweep.spec import DEFAULT_SPEC, SWEEPS_DIR


def ensure_ignored(root: Path) -> None:
    """``.sweeps/`` ignores itself, so trial workspaces and the study never show in git."""
    folder = root / SWEEPS_DIR
    folder.mkdir(exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# trainflow sweep: studies, trial workspaces and reports (not versioned)\n*\n")


def sweep_command(spec_path: str | None, root: Path, apply: bool = False) -> dict[str, Any]:
    """Run (or continue) the sweep, write its report; with ``apply``, only write the best
    values into params.yaml. Returns a summary (paths and the best trial)."""
    from trainflow.sweep.report import best_values, markdown, ranking_rows, write_report
    from trainflow.sweep.spec import load_spec
    from trainflow.sweep.study import existing_study

    spec = load_spec(spec_path or root / DEFAULT_SPEC, root)
    if apply:
        from trainflow.sweep.apply_best import apply_best

        values = best_values(spec, existing_study(spec, root))
        experiment = apply_best(root / spec.params, values)
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        print(f"sweep: wrote the best trial's values into {spec.params}: {shown} (experiment {experiment})")
        return {"applied": values, "experiment_id": experiment}
    from trainflow.sweep.runner import Sweep

    ensure_ignored(root)
    study = Sweep(spec, root).run()
    files = write_report(spec, study, root)
    print(markdown(ranking_rows(spec, study)), end="")
    diff = files["best.diff"].read_text(encoding="utf-8")
    print(f"best params against {spec.params} (apply with `trainflow sweep --apply-best`):\n{diff or '(no change)'}")
    print(f"sweep: report in {spec.study_dir(root)}/ ({', '.join(files)}); `dvc exp show` lists the trials")
    return {"files": {name: str(path) for name, path in files.items()}, "best": best_values(spec, study)}

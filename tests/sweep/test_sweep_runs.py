"""Real sweeps on a temporary git+DVC copy of the project: every trial is the pipeline, a DVC
experiment of the project; a grid sweep with pruning and its ranking; a killed random sweep
resumed without re-running a finished trial, ending with the trials its seed proposes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.fixtures.project import make_project, project_env, run
from trainflow.sweep.spec import parse_spec
from trainflow.sweep.study import RETRIED, decode, random_proposals

pytestmark = pytest.mark.e2e

PARAMS = {"train": {"max_epochs": 2, "early_stopping": {"patience": 0}}}


def _write_spec(project: Path, spec: dict[str, Any]) -> Path:
    path = project / f"{spec['study']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _study(project: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{project / '.sweeps' / name / 'study.db'}")


def _completed_trials(project: Path, name: str) -> set[int]:
    """Numbers of the study's finished trials; none while the sweep has yet to create the study
    in its database (the file exists a moment before the study's record does)."""
    try:
        trials = _study(project, name).get_trials()
    except KeyError:
        return set()
    return {t.number for t in trials if t.state == TrialState.COMPLETE}


def _experiments(project: Path) -> dict[str, dict[str, Any]]:
    """``dvc exp show --json`` of the project: experiment name -> its params.yaml values."""
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    found = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                data = rev.get("data") or {}
                params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
                found[exp.get("name") or rev.get("name")] = {"params": params, "metrics": data.get("metrics")}
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("sweep") / "project", PARAMS)


def test_grid_sweep_trials_pruning_ranking_and_apply_best(project: Path) -> None:
    spec = {
        "study": "grid",
        "search": "grid",
        "metric": "val.accuracy",
        "mode": "max",
        "parallelism": 1,
        "seed": 1,  # GridSampler(seed=1) runs lr=0.003 first, so the median pruner can judge lr=1e-6
        "pruner": {"name": "median", "startup_trials": 1, "warmup_epochs": 0},
        "fixed": {"train.max_epochs": 2},
        "space": {"train.optimizer.lr": {"type": "choice", "values": [0.003, 1e-6]}},
    }
    result = run(["trainflow", "sweep", "--spec", str(_write_spec(project, spec))], project)
    assert "2 trials (0 already done)" in result.stdout

    trials = {t.params["train.optimizer.lr"]: t for t in _study(project, "grid").trials}
    assert trials[0.003].state == TrialState.COMPLETE and trials[0.003].value > 0.8
    assert trials[1e-6].state == TrialState.PRUNED  # far below trial 0 at epoch 1
    assert list(trials[1e-6].intermediate_values) == [1]  # reported once, then stopped

    experiments = _experiments(project)
    for lr, trial in trials.items():
        exp = experiments[f"grid-{trial.number}"]
        assert exp["params"]["train"]["optimizer"]["lr"] == lr and exp["params"]["train"]["max_epochs"] == 2
        assert exp["metrics"]["metrics/eval.json"]["data"]["val"]["accuracy"] is not None

    folder = project / ".sweeps" / "grid"
    rows = (folder / "ranking.csv").read_text().splitlines()
    assert rows[0].startswith("rank,trial,state,val.accuracy,train.optimizer.lr")
    assert rows[1].startswith(f"1,{trials[0.003].number},complete,")
    assert rows[2].startswith(f"2,{trials[1e-6].number},pruned,")
    assert "| 1 |" in (folder / "ranking.md").read_text()
    assert (folder / "best.diff").read_text() == "- train.optimizer.lr: 0.001\n+ train.optimizer.lr: 0.003\n"
    assert (folder / "plots" / "history.png").stat().st_size > 1000
    assert (folder / "plots" / "parallel_coordinates.png").exists()
    assert ".sweeps" not in run(["git", "status", "--porcelain", "--ignored=no"], project).stdout  # ignores itself

    run(["trainflow", "sweep", "--spec", str(project / "grid.yaml"), "--apply-best"], project)
    applied = yaml.safe_load((project / "params.yaml").read_text())
    assert applied["train"]["optimizer"]["lr"] == 0.003 and applied["train"]["max_epochs"] == 2


def test_killed_random_sweep_resumes_without_rerunning(project: Path) -> None:
    spec = {
        "study": "rand",
        "search": "random",
        "n_trials": 3,
        "parallelism": 2,
        "seed": 7,
        "fixed": {"train.max_epochs": 1},
        "space": {"train.optimizer.lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
    }
    path = _write_spec(project, spec)
    log = project.parent / "rand-first.log"  # outside the repo the sweep commits experiments of
    with log.open("w") as out:
        first = subprocess.Popen(
            ["trainflow", "sweep", "--spec", str(path)],
            cwd=project,
            env=project_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    db = project / ".sweeps" / "rand" / "study.db"
    while first.poll() is None:  # kill it (and its trials) once one trial has finished
        if db.exists() and _completed_trials(project, "rand"):
            os.killpg(first.pid, signal.SIGKILL)
            break
        time.sleep(1)
    first.wait()
    done_before = _completed_trials(project, "rand")
    assert done_before and first.returncode != 0

    second = run(["trainflow", "sweep", "--spec", str(path)], project).stdout
    assert f"({len(done_before)} already done)" in second
    assert not any(f"trial {n} started" in second for n in done_before)  # a finished trial never re-runs

    study = _study(project, "rand")
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and all(not t.user_attrs.get(RETRIED) for t in complete)
    proposed = random_proposals(parse_spec(spec))  # the same spec and seed propose the same trials
    assert sorted(json.dumps(decode(parse_spec(spec), t.params)) for t in complete) == sorted(
        json.dumps(p) for p in proposed
    )
    assert {f"rand-{t.number}" for t in complete} <= set(_experiments(project))

    third = run(["trainflow", "sweep", "--spec", str(path)], project).stdout
    assert "(3 already done)" in third and "started" not in third.split("already done")[1]

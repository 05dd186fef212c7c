"""Run a sweep's trials: each the real pipeline in its own workspace, each a DVC experiment.

A trial is a ``git clone --shared`` of the project's HEAD into ``.sweeps/<study>/trial-<n>``,
using the project's DVC cache (so unchanged stages restore from the run cache), where
``dvc exp run -S key=value ... -n <study>-<n>`` runs the pipeline; ``dvc exp push <project>``
then puts the experiment into the project, where ``dvc exp show`` lists it with the others.
DVC's queue is not used: ``parallelism`` threads each drive one trial process at a time
(1 torch thread per trial). The objective is ``spec.metric`` read from the trial's
metrics/eval.json. The environment tells the train stage's pruning callback which trial it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from trainflow.errors import TrainflowError
from trainflow.sweep.spec import SWEEPS_DIR, SweepSpec, override
from trainflow.sweep.study import attach_study, counted, decode, distributions, open_study
from trainflow.training.supervisor import processes_with_env, run_command

ENV_STORAGE = "TRAINFLOW_SWEEP_STORAGE"
ENV_STUDY = "TRAINFLOW_SWEEP_STUDY"
ENV_TRIAL = "TRAINFLOW_SWEEP_TRIAL"
ENV_MONITOR = "TRAINFLOW_SWEEP_MONITOR"
ENV_PRUNED_FILE = "TRAINFLOW_SWEEP_PRUNED_FILE"
ENV_PRUNER = "TRAINFLOW_SWEEP_PRUNER"
ENV_RUNNER = "TRAINFLOW_SWEEP_RUNNER"  # marks the processes of one sweep, to stop them on Ctrl-C


@dataclass(frozen=True)
class TrialResult:
    number: int
    state: str
    value: float | None
    experiment: str


def experiment_name(spec: SweepSpec, number: int) -> str:
    return f"{spec.study}-{number}"


def metric_value(eval_json: Path, key: str) -> float:
    """``key`` (dotted, e.g. ``val.accuracy``) of a metrics/eval.json."""
    node: Any = json.loads(eval_json.read_text(encoding="utf-8"))
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            known = ", ".join(sorted(_leaves(json.loads(eval_json.read_text(encoding="utf-8")))))
            raise TrainflowError(f"sweep.metric: {key!r} is not in {eval_json.name}; available: {known}")
        node = node[part]
    return float(node)


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return [prefix.rstrip(".")]
    return [leaf for key, value in node.items() for leaf in _leaves(value, f"{prefix}{key}.")]


def monitor_key(metric: str) -> str:
    """The per-epoch record key the pruner watches: ``val.accuracy`` -> ``val/accuracy``;
    a test metric (not computed per epoch) is watched through the validation loss."""
    split, _, name = metric.partition(".")
    return f"val/{name}" if split == "val" and "." not in name else "val/loss"


def _command(cmd: list[str], cwd: Path, log: Path, env: dict[str, str]) -> int:
    """Run ``cmd`` under the project's process supervisor (its whole tree goes when the sweep
    does), appending its output to ``log``; the exit code."""
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        result = run_command(
            cmd, cwd=cwd, env=env, on_line=lambda line: (out.write(line + "\n"), out.flush()), check=False
        )
        return result.returncode


def _tool(name: str) -> str:
    """A command of this venv (dvc), else the one on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def prepare_workspace(root: Path, workspace: Path, log: Path) -> None:
    """A clone of the project's HEAD sharing its git objects and its DVC cache."""
    if workspace.exists():
        shutil.rmtree(workspace)
    env = os.environ.copy()
    cache = subprocess.run(
        [_tool("dvc"), "cache", "dir"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    for cmd, cwd in (
        (["git", "clone", "-q", "--shared", str(root.resolve()), str(workspace)], root),
        ([_tool("dvc"), "cache", "dir", "--local", cache], workspace),
    ):
        if _command(cmd, cwd, log, env):
            raise TrainflowError(f"sweep: {' '.join(cmd[:3])} failed; see {log}")


def run_trial(
    spec: SweepSpec, root: Path, number: int, values: dict[str, Any], storage: str, runner: str = ""
) -> tuple[str, float]:
    """Run trial ``number`` with ``values`` (plus ``spec.fixed``); ``(state, metric)``.

    The state is ``COMPLETE`` or ``PRUNED`` (the train stage stopped it); a failed pipeline
    raises :class:`TrainflowError` naming the trial's log.
    """
    study_dir = root / SWEEPS_DIR / spec.study
    workspace, log = study_dir / f"trial-{number}", study_dir / f"trial-{number}.log"
    log.write_text("", encoding="utf-8")
    prepare_workspace(root, workspace, log)
    pruned_file = study_dir / f"trial-{number}.pruned"
    pruned_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str((workspace / "src").resolve()),  # the trial runs its own checkout's code
        "OMP_NUM_THREADS": "1",
        "DVC_NO_ANALYTICS": "1",
        ENV_STORAGE: storage,
        ENV_STUDY: spec.study,
        ENV_TRIAL: str(number),
        ENV_MONITOR: monitor_key(spec.metric),
        ENV_PRUNED_FILE: str(pruned_file.resolve()),
        ENV_PRUNER: spec.pruner.model_dump_json(),
        ENV_RUNNER: runner,
    }
    sets = [arg for key, value in {**spec.fixed, **values}.items() for arg in ("-S", override(key, value))]
    name = experiment_name(spec, number)
    if _command([_tool("dvc"), "exp", "run", *sets, "-n", name], workspace, log, env):
        raise TrainflowError(f"sweep: trial {number} failed; see {log}")
    if _command([_tool("dvc"), "exp", "push", "--no-cache", "-f", str(root.resolve()), name], workspace, log, env):
        raise TrainflowError(f"sweep: could not record trial {number} in the project; see {log}")
    value = metric_value(workspace / "metrics" / "eval.json", spec.metric)
    shutil.rmtree(workspace, ignore_errors=True)
    return ("PRUNED" if pruned_file.exists() else "COMPLETE"), value


class Sweep:
    """Drives the study: asks for trials until ``spec.trials`` are done, ``parallelism`` at once.

    ``resume=True`` (a sweep's one driver) fails and re-enqueues trials a killed sweep left
    running; a runner of a single trial (the Prefect trial flow) attaches with ``resume=False``.
    """

    def __init__(self, spec: SweepSpec, root: Path, echo: Any = print, resume: bool = True) -> None:
        self.spec, self.root, self.echo = spec, root, echo
        self.study = open_study(spec, root) if resume else attach_study(spec, root)
        self.storage = spec.storage_url(root)
        self.lock = threading.Lock()
        self.results: list[TrialResult] = []
        self.token, self.stopping = uuid.uuid4().hex, threading.Event()

    def _next(self) -> optuna.trial.Trial | None:
        with self.lock:
            if self.stopping.is_set() or counted(self.study) >= self.spec.trials:
                return None
            return self.study.ask(distributions(self.spec))

    def run_one(self) -> TrialResult | None:
        """Run the next trial to its end and tell the study; None when all are done."""
        if (trial := self._next()) is None:
            return None
        values = decode(self.spec, trial.params)
        name = experiment_name(self.spec, trial.number)
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())
        self.echo(f"sweep: trial {trial.number} started: {shown}")
        try:
            state, value = run_trial(self.spec, self.root, trial.number, values, self.storage, self.token)
        except TrainflowError as error:
            if self.stopping.is_set():
                return None  # left running: the next `trainflow sweep` runs it again
            self.study.tell(trial, state=TrialState.FAIL)
            self.echo(f"sweep: trial {trial.number} failed: {error}")
            return TrialResult(trial.number, "FAIL", None, name)
        trial.set_user_attr("experiment", name)
        if state == "PRUNED":
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, value)
        self.echo(f"sweep: trial {trial.number} {state.lower()}: {self.spec.metric}={value:.6g}")
        result = TrialResult(trial.number, state, value, name)
        self.results.append(result)
        return result

    def _worker(self) -> None:
        while self.run_one() is not None:
            pass

    def run(self) -> optuna.Study:
        done = counted(self.study)
        self.echo(
            f"sweep {self.spec.study}: {self.spec.search} search, {self.spec.trials} trials "
            f"({done} already done), {self.spec.parallelism} at a time; study in {self.storage}"
        )
        pool = ThreadPoolExecutor(max_workers=self.spec.parallelism)
        futures = [pool.submit(self._worker) for _ in range(self.spec.parallelism)]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            self.stop()
            raise
        finally:
            pool.shutdown(wait=True)
        return self.study

    def stop(self) -> None:
        """Ctrl-C: end the running trials (their processes run in sessions of their own) and
        start no more; the study keeps them as running, so a rerun repeats them."""
        self.stopping.set()
        self.echo("sweep: interrupted; stopping the running trials (run `trainflow sweep` again to continue)")
        for pid in processes_with_env(ENV_RUNNER, self.token):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)

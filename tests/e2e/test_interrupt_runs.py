"""Ctrl-C of a whole run, as a terminal sends it (SIGINT to the foreground process group).

For `trainflow train` as a 2-process DDP job under torchrun (gloo on CPU) and for `dvc repro`
of a git+DVC project: once training has printed an epoch line, the run is interrupted. It must
exit promptly with a non-zero code and without a traceback, leave no process of the project
running, keep a checkpoint, and the next run must resume from it and finish.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.interrupt_helpers import interrupt_when, processes_mentioning
from tests.fixtures.project import REPO, make_project, project_env, run

pytestmark = pytest.mark.e2e

EPOCHS = 8  # long enough to be interrupted after the first epoch line, short enough to finish
EPOCH_LINE = f"/{EPOCHS} "  # "train: epoch 1/8 ..." (the per-epoch progress line)


def check_interrupted(folder: Path, argv: list[str], codes: set[int]) -> str:
    """Interrupt ``argv`` in ``folder`` after its first epoch line; check how it ended."""
    result = interrupt_when(argv, folder, project_env(), EPOCH_LINE)
    assert result.signalled, result.output
    assert result.returncode in codes, result.output
    assert "Traceback" not in result.output, result.output
    assert processes_mentioning(str(folder)) == []
    assert list((folder / "models").glob("**/*.pt")), "a checkpoint is kept"
    print(f"{' '.join(argv)}: exited {result.returncode} {result.exit_s:.1f} s after Ctrl-C")
    print("".join(result.output.splitlines(keepends=True)[-6:]))
    return result.output


def test_ctrl_c_of_ddp_train_stops_both_ranks_and_the_next_run_resumes(tmp_path: Path) -> None:
    params = {"train": {"max_epochs": EPOCHS, "early_stopping": {"patience": 0}, "distributed": {"nproc_per_node": 2}}}
    folder = make_project(tmp_path / "project", params)
    run(["trainflow", "prepare"], folder)
    run(["trainflow", "fit-encoder"], folder)
    output = check_interrupted(folder, ["trainflow", "train"], {130})
    assert output.count("error: ") == 1, output  # one line saying what happened and what to do
    assert "again to continue" in output, output
    again = run(["trainflow", "train"], folder)
    assert "resumed from" in again.stdout + again.stderr
    assert (folder / "metrics" / "train.json").is_file()
    assert processes_mentioning(str(folder)) == []


def test_ctrl_c_of_dvc_repro_stops_training_and_the_next_repro_resumes(tmp_path: Path) -> None:
    params = {"train": {"max_epochs": EPOCHS, "early_stopping": {"patience": 0}}}
    folder = make_project(tmp_path / "project", params)
    output = check_interrupted(folder, ["dvc", "repro"], {130, 252, 255, 1})
    assert "again to continue" in output, output
    again = run(["dvc", "repro"], folder)
    assert "resumed from" in again.stdout + again.stderr
    assert (folder / "metrics" / "eval.json").is_file()
    assert processes_mentioning(str(folder)) == []


def test_ctrl_c_of_a_prefect_flow_run_stops_the_stage_and_the_next_run_resumes(
    tmp_path: Path, prefect_server: str
) -> None:
    from tests.fixtures.prefect import prefect_env
    from tests.orchestration.projects import pipeline_project

    root = pipeline_project(tmp_path / "project", {"train.max_epochs": EPOCHS})
    env = {**project_env(), **prefect_env(prefect_server, tmp_path / "prefect-home")}
    argv = [sys.executable, "-m", "flows", "flow", "training_pipeline", "--root", str(root), "--no-upload"]
    result = interrupt_when(argv, REPO, env, EPOCH_LINE)
    assert result.signalled, result.output
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output, result.output
    assert processes_mentioning(str(root)) == []
    assert list((root / "models").glob("**/*.pt")), "a checkpoint is kept"
    print(f"python -m flows flow training_pipeline: exited {result.returncode} {result.exit_s:.1f} s after Ctrl-C")
    again = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resumed from" in again.stdout + again.stderr
    assert processes_mentioning(str(root)) == []


CHILD = """
import signal, sys, time
def saved(signum, frame):
    open(sys.argv[1], "w").write("saved")
    sys.exit(130)
signal.signal(signal.SIGINT, saved)
print("ready", flush=True)
time.sleep(60)
"""


def test_ctrl_c_in_the_caller_of_run_command_reaches_the_command_as_sigint(tmp_path: Path) -> None:
    import os
    import signal
    import threading

    from trainflow.training.supervisor import run_command

    marker = tmp_path / "saved"

    def ctrl_c_when_ready(line: str) -> None:
        if line == "ready":
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()

    # Python turns SIGINT into KeyboardInterrupt only where it was not ignored at start-up; a
    # pytest started in the background of a non-interactive shell (as CI scripts may start it)
    # inherits SIGINT ignored, so the handler a terminal-started program has is set here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_command([sys.executable, "-c", CHILD, str(marker)], cwd=tmp_path, on_line=ctrl_c_when_ready)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert marker.read_text() == "saved"  # the command handled Ctrl-C itself, not a SIGTERM
    assert processes_mentioning(str(marker)) == []

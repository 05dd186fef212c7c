"""Ctrl-C of a whole run, as a terminal sends it (SIGINT to the foreground process group).

For `trainflow train` as a 2-process DDP job under torchrun (gloo on CPU) and for `dvc repro`
of a git+DVC project: once training has printed an epoch line, the run is interrupted. It must
exit promptly with a non-zero code and without a traceback, leave no process of the project
running, keep a checkpoint, and the next run must resume from it and finish.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.interrupt_helpers import interrupt_when, processes_mentioning
from tests.fixtures.project import make_project, project_env, run

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

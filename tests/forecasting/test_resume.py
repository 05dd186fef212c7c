"""Exact resume for a forecasting run: trained 2 epochs, then resumed to 4 (``train.max_epochs``
may be raised for a resume), it writes the same bytes as a run of 4 epochs from scratch, and
so does a run of 2 worker processes (DDP over gloo) resumed by one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.forecasting.stage_helpers import make_project, run_stages, stage

OUTPUTS = ("models/best.pt", "models/last.pt", "plots/history.csv", "metrics/train.json")


def trained(root: Path, *epochs_runs: tuple[str, ...]) -> dict[str, bytes]:
    run_stages(root, "prepare", "fit-encoder")
    for overrides in epochs_runs:
        assert stage(root, "train", *overrides) == 0, overrides
    return {name: (root / name).read_bytes() for name in OUTPUTS}


def test_a_resumed_forecasting_run_is_bit_identical_to_a_straight_one(tmp_path: Path) -> None:
    straight = trained(make_project(tmp_path / "straight"), ("train.max_epochs=4",))
    resumed = trained(make_project(tmp_path / "resumed"), ("train.max_epochs=2",), ("train.max_epochs=4",))
    assert resumed == straight


def test_a_ddp_forecasting_run_resumes_in_one_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path / "ddp")
    first = trained(root, ("train.max_epochs=2", "train.distributed.nproc_per_node=2"))
    capsys.readouterr()
    resumed = trained(root, ("train.max_epochs=3",))
    out = capsys.readouterr().out
    assert "resumed from" in out and "epochs done 2" in out, out
    lines = resumed["plots/history.csv"].splitlines()
    assert len(lines) == 4 and lines[:3] == first["plots/history.csv"].splitlines()  # epoch 3 added to the DDP 2

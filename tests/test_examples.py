"""The examples run as users run them and do what their docstrings say."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

from trainflow.models.snapshot import read_snapshot

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_plain_pytorch_example_trains_resumes_and_end_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "example"
    run_example("plain_pytorch.py", "--epochs", "3", "--out", str(out), monkeypatch=monkeypatch)
    printed = capsys.readouterr().out
    accuracy = float(printed.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.85
    assert len((out / "history.csv").read_text().splitlines()) == 4  # header + 3 epochs
    results = json.loads((out / "final" / "results.json").read_text())
    assert results["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert list((out / "checkpoints").glob("ckpt-e0003-*.pt"))
    snapshot = read_snapshot(out / "final" / "model.pt")  # the one weight format, config-less here
    assert snapshot["config"] is None and snapshot["epoch"] == 3
    assert set(snapshot["model_state"]) == {"0.weight", "0.bias", "3.weight", "3.bias"}

    run_example("plain_pytorch.py", "--epochs", "3", "--out", str(out), monkeypatch=monkeypatch)
    assert "training already finished: 3 of 3 epochs done" in capsys.readouterr().out

    run_example("plain_pytorch.py", "--epochs", "4", "--out", str(out), monkeypatch=monkeypatch)
    printed = capsys.readouterr().out
    assert "resumed from" in printed and "epoch 4/4" in printed

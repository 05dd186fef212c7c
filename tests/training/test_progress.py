"""Progress: one plain line per epoch when not on a terminal (CI), tqdm bars on a terminal."""

from __future__ import annotations

import io

import pytest

from tests.training.conftest import build_trainer
from trainflow.training.progress import ProgressBar, epoch_line, is_interactive


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_mode_prints_one_line_per_epoch() -> None:
    stream = io.StringIO()
    build_trainer(progress="off", callbacks=[ProgressBar("lines", stream=stream)]).fit(3)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3  train/loss ") and "val/accuracy" in lines[0] and lines[0].endswith("s)")


def test_auto_mode_uses_bars_on_a_terminal_and_lines_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    terminal = Terminal()
    assert is_interactive(terminal) and not is_interactive(io.StringIO())
    build_trainer(progress="off", callbacks=[ProgressBar("auto", stream=terminal)]).fit(2)
    output = terminal.getvalue()
    assert "epoch 1/2:" in output and "/6 [" in output  # a tqdm bar: description and count
    assert "epoch 2/2  train/loss" in output  # the summary line after the bar

    monkeypatch.setenv("CI", "true")
    assert not is_interactive(terminal)
    ci = Terminal()
    build_trainer(progress="off", callbacks=[ProgressBar("auto", stream=ci)]).fit(2)
    assert "/6 [" not in ci.getvalue() and len(ci.getvalue().splitlines()) == 2


def test_off_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    build_trainer(progress="off").fit(1)
    assert capsys.readouterr().out == ""


def test_default_progress_prints_lines_when_stdout_is_captured(capsys: pytest.CaptureFixture[str]) -> None:
    build_trainer(progress="auto").fit(2)
    assert [line[:9] for line in capsys.readouterr().out.splitlines()] == ["epoch 1/2", "epoch 2/2"]


def test_epoch_line_format() -> None:
    assert epoch_line({"epoch": 3, "val/loss": 0.123456}, 30) == "epoch 3/30  val/loss 0.1235"
    assert epoch_line({"epoch": 3}, 30, 1.5) == "epoch 3/30  (1.50s)"

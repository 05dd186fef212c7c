"""Ctrl-C during ``fit``: a checkpoint at the current position, one line, no traceback, exact resume."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import torch

DRIVER = Path(__file__).with_name("interrupt_driver.py")


def _run(folder: Path, out: Path, interrupt_at: int | None = None) -> str:
    process = subprocess.Popen(
        [sys.executable, str(DRIVER), str(folder), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if interrupt_at is not None and line.strip() == f"batch {interrupt_at}":
            process.send_signal(signal.SIGINT)
    assert process.wait(timeout=300) == 0, "".join(lines)
    return "".join(lines)


def test_ctrl_c_saves_the_position_and_a_resumed_fit_ends_bit_identical(tmp_path: Path) -> None:
    interrupted = tmp_path / "interrupted"
    output = _run(interrupted, tmp_path / "partial.pt", interrupt_at=8)
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert "interrupted at epoch 2, batch " in output and "; fit(resume=True) continues" in output
    assert "fit returned, interrupted=True" in output
    assert list((interrupted / "checkpoints").glob("ckpt-e0001-b*.pt")), "saved at the interrupted position"

    resumed = _run(interrupted, tmp_path / "resumed.pt")
    assert "fit returned, interrupted=False" in resumed
    _run(tmp_path / "straight", tmp_path / "straight.pt")
    a = torch.load(tmp_path / "resumed.pt", weights_only=True)
    b = torch.load(tmp_path / "straight.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)

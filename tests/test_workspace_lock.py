"""The workspace lock: a second stage in the same folder fails at once naming the holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

TRAINFLOW = str(Path(sys.executable).with_name("trainflow"))
HOLD = (
    "import sys, time; from pathlib import Path; from trainflow.workspace_lock import workspace_lock\n"
    "with workspace_lock(Path(sys.argv[1]), 'train'):\n"
    "    print('held', flush=True); time.sleep(600)\n"
)


def _hold(root: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _prepare(root: Path) -> subprocess.CompletedProcess[str]:
    (root / "params.yaml").write_text("seed: 0\n")
    return subprocess.run(
        [TRAINFLOW, "prepare", "--root", str(root), "--params", str(root / "params.yaml")],
        capture_output=True,
        text=True,
        cwd=root,
    )


def test_a_second_stage_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    holder = _hold(tmp_path)
    try:
        result = _prepare(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    lock = tmp_path / ".trainflow.lock"
    assert result.stderr.startswith(f"error: {lock}: the workspace is in use by pid {holder.pid}")
    assert "(trainflow train, since " in result.stderr


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = _hold(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    result = _prepare(tmp_path)
    assert "workspace is in use" not in result.stderr  # the stage ran (and failed for want of data)
    assert result.returncode != 3

"""`tensorboard --logdir runs` (the viewer the lock installs) shows one run per experiment."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tensorboardX import SummaryWriter

TENSORBOARD = str(Path(sys.executable).with_name("tensorboard"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_viewer_lists_each_experiments_run_dir(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for experiment in ("0123abcd4567", "89efcdab0123"):
        with SummaryWriter(logdir=str(runs / experiment)) as writer:
            writer.add_scalar("val/loss", 0.5, 1)
    port = _free_port()
    server = subprocess.Popen(
        [TENSORBOARD, "--logdir", str(runs), "--host", "127.0.0.1", "--port", str(port), "--load_fast=false"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        listed: list[str] = []
        for _ in range(120):  # bounded: up to ~60 s for start-up and the first reload
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2) as response:
                    listed = json.loads(response.read())
            except OSError:
                listed = []
            if len(listed) == 2:
                break
            time.sleep(0.5)
        assert sorted(listed) == ["0123abcd4567", "89efcdab0123"]
    finally:
        server.terminate()
        server.wait(timeout=30)

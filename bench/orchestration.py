"""What does Prefect orchestration cost on top of ``dvc repro``?

Runs the default pipeline two ways, each in its own temporary git + DVC copy of the project:

- peer: ``dvc repro``;
- flow: ``python -m flows flow training_pipeline --no-upload`` reporting to a running Prefect
  server (started here, on 127.0.0.1, with its own PREFECT_HOME), which runs every stage as a
  Prefect task through ``dvc repro --single-item``.

Two cases: the full pipeline from scratch (target: flow / dvc <= 1.15) and a no-op re-run
(nothing changed; DVC skips every stage). Both commands are timed end to end as a user runs
them, interpreter start-up included; the upload is off because ``dvc repro`` does not upload.

    python bench/orchestration.py [--repeats N] [--noop-repeats N] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tasks.params import apply_overrides
from tasks.process import terminate_group

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

TARGET = 1.15
QUIET = {
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
}
COPY_FILES = ("dvc.yaml", "params.yaml", ".dvcignore")
COPY_DIRS = ("data/raw", "src", "flows", "tasks")


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, **QUIET, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def sh(args: Sequence[str], cwd: Path, extra_env: dict[str, str] | None = None) -> float:
    """Run a command; return its wall time in seconds (fails loudly with its output)."""
    started = time.perf_counter()
    result = subprocess.run(list(args), cwd=cwd, env={**env(), **(extra_env or {})}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{output}")
    return seconds


def make_project(path: Path, overrides: dict[str, object]) -> Path:
    """A git + DVC copy of the project with ``overrides`` applied, committed once."""
    path.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in COPY_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, path / name)
    for name in COPY_DIRS:
        shutil.copytree(ROOT / name, path / name, ignore=ignore)
    apply_overrides(path / "params.yaml", overrides)
    for command in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "bench@trainflow.invalid"],
        ["git", "config", "user.name", "bench"],
        [str(BIN / "dvc"), "init", "-q"],
        [str(BIN / "dvc"), "config", "core.check_update", "false"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "bench"],
    ):
        sh(command, path)
    return path


class PrefectServer:
    """``prefect server start`` on a free port of 127.0.0.1, stopped with its whole process group."""

    def __init__(self, home: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.home = home
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrefectServer:
        command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--no-ui"]
        log = open(self.home / "server.log", "wb")
        self.process = subprocess.Popen(
            command, env=env(PREFECT_HOME=str(self.home)), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        while True:
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    log_text = (self.home / "server.log").read_text()[-3000:]
                    raise SystemExit(f"prefect server exited:\n{log_text}") from None
                time.sleep(0.25)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            terminate_group(self.process, grace_s=20.0)


def parse_overrides(items: Sequence[str]) -> dict[str, object]:
    from trainflow.config import parse_override

    return dict(parse_override(item) for item in items)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="full pipeline runs per side (default 1)")
    parser.add_argument("--noop-repeats", type=int, default=3, help="no-op re-runs per side (default 3)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.overrides)

    with tempfile.TemporaryDirectory(prefix="trainflow-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "prefect-home").mkdir()
        with PrefectServer(tmp / "prefect-home") as server:
            prefect_env = {"PREFECT_API_URL": server.api_url, "PREFECT_HOME": str(tmp / "prefect-home")}
            flow_command = [sys.executable, "-m", "flows", "flow", "training_pipeline", "--no-upload"]
            full_dvc, full_flow, noop_dvc, noop_flow = [], [], [], []
            dvc_root = flow_root = tmp
            for repeat in range(args.repeats):
                dvc_root = make_project(tmp / f"dvc-{repeat}", overrides)
                flow_root = make_project(tmp / f"flow-{repeat}", overrides)
                if repeat == 0:  # warm the page cache and the server once, untimed
                    sh([sys.executable, "-m", "flows", "--help"], flow_root, prefect_env)
                    sh([str(BIN / "trainflow"), "config", "show"], dvc_root)
                full_dvc.append(sh([str(BIN / "dvc"), "repro"], dvc_root))
                full_flow.append(sh(flow_command, flow_root, prefect_env))
                print(f"full run {repeat + 1}: dvc repro {full_dvc[-1]:.2f} s, flow {full_flow[-1]:.2f} s", flush=True)
            for _ in range(args.noop_repeats):
                noop_dvc.append(sh([str(BIN / "dvc"), "repro"], dvc_root))
                noop_flow.append(sh(flow_command, flow_root, prefect_env))

    rows = [("full pipeline", full_dvc, full_flow, TARGET), ("no-op re-run", noop_dvc, noop_flow, None)]
    print()
    print(f"orchestration overhead ({os.cpu_count()} CPUs; median of the runs; flow = Prefect flow via a server)")
    print(f"{'case':<16}{'dvc repro s':>13}{'flow s':>10}{'flow/dvc':>10}  target")
    for name, peer, ours, target in rows:
        a, b = statistics.median(peer), statistics.median(ours)
        verdict = "" if target is None else f"<= {target} {'met' if b / a <= target else 'NOT met'}"
        print(f"{name:<16}{a:>13.2f}{b:>10.2f}{b / a:>10.2f}  {verdict}")


if __name__ == "__main__":
    main()

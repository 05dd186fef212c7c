"""What does Prefect orchestration cost on top of ``dvc repro``?

Runs the default pipeline three ways, each in its own temporary git + DVC copy of the project:

- peer: ``dvc repro``;
- flow: ``python -m flows flow training_pipeline --no-upload`` reporting to a running Prefect
  server (started here, on 127.0.0.1, with its own PREFECT_HOME), which runs every stage as a
  Prefect task through ``dvc repro --single-item``, one ``dvc`` process per command (this
  checkout's ``tasks/`` and ``flows/``);
- warm-dvc flow: the same flow as it was at ``--warm-rev`` (``tasks/`` and ``flows/`` of that
  revision), where every DVC command of a run went to one long-lived ``dvc`` process over a
  JSON-lines pipe (``tasks/dvc_runner.py``); skipped with ``--warm-rev ""``. It is the
  variant this checkout dropped, kept here to show what dropping it costs.

Two cases: the full pipeline from scratch (target: flow / dvc <= 1.15 in wall time) and a
no-op re-run (nothing changed; DVC skips every stage). Both commands are timed end to end as a
user runs them, interpreter start-up included; the upload is off because ``dvc repro`` does not
upload. Besides wall time, the CPU time of each command's whole process tree is compared: on
a shared machine it is the steadier measure of what the orchestration itself adds (the
server's own work is not in it). The sides alternate which runs first.

    python bench/orchestration.py [--repeats N] [--noop-repeats N] [--warm-rev REV] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import os
import resource
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
from trainflow.training.supervisor import Supervised

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
#: The last revision with the long-lived DVC process (tasks/dvc_runner.py).
WARM_REV = "582b881"


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, **QUIET, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def sh(args: Sequence[str], cwd: Path, extra_env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a command; return its wall time and the CPU time of its whole process tree, in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(list(args), cwd=cwd, env={**env(), **(extra_env or {})}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{output}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def make_project(path: Path, overrides: dict[str, object], orchestration_rev: str | None = None) -> Path:
    """A git + DVC copy of the project with ``overrides`` applied, committed once; with
    ``orchestration_rev``, its ``tasks/`` and ``flows/`` are that revision's."""
    path.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in COPY_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, path / name)
    for name in COPY_DIRS:
        if orchestration_rev and name in ("flows", "tasks"):
            archive = subprocess.run(
                ["git", "archive", orchestration_rev, name], cwd=ROOT, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(path)], input=archive.stdout, check=True)
        else:
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
        self.server: Supervised | None = None

    def __enter__(self) -> PrefectServer:
        command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--no-ui"]
        with open(self.home / "server.log", "wb") as log:
            self.server = Supervised(
                command, env=env(PREFECT_HOME=str(self.home)), stdout=log, stderr=subprocess.STDOUT
            )
        while True:
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2):
                    return self
            except OSError:
                if self.server.poll() is not None:
                    log_text = (self.home / "server.log").read_text()[-3000:]
                    raise SystemExit(f"prefect server exited:\n{log_text}") from None
                time.sleep(0.25)

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.stop(grace_s=20.0)


def parse_overrides(items: Sequence[str]) -> dict[str, object]:
    from trainflow.config import parse_override

    return dict(parse_override(item) for item in items)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="full pipeline runs per side (default 2)")
    parser.add_argument("--noop-repeats", type=int, default=3, help="no-op re-runs per side (default 3)")
    parser.add_argument("--warm-rev", default=WARM_REV, help=f"revision of the warm-dvc flow (default {WARM_REV})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.overrides)
    sides = ("dvc", "flow", "warm") if args.warm_rev else ("dvc", "flow")
    labels = {"dvc": "dvc repro", "flow": "flow", "warm": "warm-dvc flow"}

    with tempfile.TemporaryDirectory(prefix="trainflow-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "prefect-home").mkdir()
        with PrefectServer(tmp / "prefect-home") as server:
            prefect_env = {"PREFECT_API_URL": server.api_url, "PREFECT_HOME": str(tmp / "prefect-home")}
            flow_command = [sys.executable, "-m", "flows", "flow", "training_pipeline", "--no-upload"]
            full: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
            noop: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
            roots = dict.fromkeys(sides, tmp)
            commands = {"dvc": [str(BIN / "dvc"), "repro"], "flow": flow_command, "warm": flow_command}
            extra = {"dvc": {}, "flow": prefect_env, "warm": prefect_env}
            for repeat in range(args.repeats):
                roots = {
                    side: make_project(tmp / f"{side}-{repeat}", overrides, args.warm_rev if side == "warm" else None)
                    for side in sides
                }
                if repeat == 0:  # warm the page cache, untimed
                    sh([sys.executable, "-m", "flows", "--help"], roots["flow"], prefect_env)
                    sh([str(BIN / "trainflow"), "config", "show"], roots["dvc"])
                # rotate which side goes first, so a drift in the machine's load hits every side
                for side in sides[repeat % len(sides) :] + sides[: repeat % len(sides)]:
                    full[side].append(sh(commands[side], roots[side], extra[side]))
                times = ", ".join(f"{labels[side]} {full[side][-1][0]:.2f} s" for side in sides)
                print(f"full run {repeat + 1}: {times}", flush=True)
            for repeat in range(args.noop_repeats):
                for side in sides[repeat % len(sides) :] + sides[: repeat % len(sides)]:
                    noop[side].append(sh(commands[side], roots[side], extra[side]))

    print()
    print(f"orchestration overhead ({os.cpu_count()} CPUs, medians; a flow reports to a Prefect server)")
    print(f"{'case':<15}{'side':<15}{'wall s':>8}{'wall ratio':>12}{'cpu ratio':>11}  target (wall)")
    for name, runs, target in (("full pipeline", full, TARGET), ("no-op re-run", noop, None)):
        wall = {side: statistics.median(w for w, _ in runs[side]) for side in sides}
        cpu = {side: statistics.median(c for _, c in runs[side]) for side in sides}
        print(f"{name:<15}{labels['dvc']:<15}{wall['dvc']:>8.2f}{1.0:>12.2f}{1.0:>11.2f}")
        for side in sides[1:]:
            ratio = wall[side] / wall["dvc"]
            verdict = "" if target is None else f"<= {target}: {'met' if ratio <= target else 'NOT met'}"
            print(
                f"{'':<15}{labels[side]:<15}{wall[side]:>8.2f}{ratio:>12.2f}{cpu[side] / cpu['dvc']:>11.2f}  {verdict}"
            )


if __name__ == "__main__":
    main()

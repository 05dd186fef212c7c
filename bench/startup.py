"""Start-up cost of the `trainflow` command, as ratios to `python -c "import torch"`.

Prints, for the default experiment on the embedded digits data, the wall time of
``trainflow config show`` and of each stage command, each divided by the time of
``python -c "import torch"`` measured in the same run (median of ``--repeat`` runs), and the
wall time of the default ``dvc repro -f`` for this working tree and for ``--before`` (a git
ref, by default the last commit whose config imported every component), side by side.

Targets (issue 8): config show <= 0.3, prepare and fit-encoder <= 1.2.

    python bench/startup.py [--repeat 3] [--before REF] [--no-repro]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "582b881"  # registry: a problems registry; config.py still imported every component
STAGES = ("prepare", "fit-encoder", "train", "evaluate", "package")
TARGETS = {"config show": 0.3, "prepare": 1.2, "fit-encoder": 1.2}
OUTPUTS = ("data/prepared", "data/encoders", "models", "metrics", "plots", "results", "runs", "evaluation")


def wall(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds ``command`` takes; a failure stops the benchmark with its output."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(command)} failed in {cwd}:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
    return elapsed


def median_wall(command: list[str], cwd: Path, env: dict[str, str], repeat: int) -> float:
    return statistics.median(wall(command, cwd, env) for _ in range(repeat))


def project_copy(target: Path, ref: str | None = None) -> Path:
    """A git repository at ``target`` holding this working tree (``ref=None``) or ``ref``'s
    tree, without any pipeline outputs, ready for ``dvc repro``."""
    target.mkdir(parents=True)
    if ref is None:
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        for name in filter(None, listed.decode().split("\0")):
            source = ROOT / name
            if source.is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
    else:
        archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    for name in (*OUTPUTS, "dvc.lock"):
        path = target / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    subprocess.run(["git", "add", "-A"], cwd=target, check=True, capture_output=True)
    subprocess.run([*git, "commit", "-qm", "bench"], cwd=target, check=True)
    return target


def environment(project: Path) -> dict[str, str]:
    """The venv first on PATH, and the project's own ``src`` first on ``sys.path`` (so the
    ``before`` tree runs its own code), analytics off."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(project / "src"),
        "DVC_NO_ANALYTICS": "1",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per command; the median is reported (default 3)")
    parser.add_argument("--before", default=BEFORE, help=f"git ref to compare dvc repro -f with (default {BEFORE})")
    parser.add_argument("--no-repro", action="store_true", help="skip the two dvc repro -f runs")
    args = parser.parse_args()
    trainflow = str(Path(sys.executable).with_name("trainflow"))
    with tempfile.TemporaryDirectory(prefix="trainflow-bench-") as tmp:
        after = project_copy(Path(tmp) / "after")
        env = environment(after)
        torch_s = median_wall([sys.executable, "-c", "import torch"], after, env, args.repeat)
        print(f'python -c "import torch": {torch_s:.2f} s (the unit below)', flush=True)
        rows = [("config show", median_wall([trainflow, "config", "show"], after, env, args.repeat))]
        for stage in STAGES:  # in pipeline order, so each stage finds its inputs
            rows.append((stage, median_wall([trainflow, stage], after, env, args.repeat)))
        for name, seconds in rows:
            ratio = seconds / torch_s
            target = TARGETS.get(name)
            verdict = "" if target is None else f"  (target <= {target}: {'ok' if ratio <= target else 'MISSED'})"
            print(f"trainflow {name:<12} {seconds:6.2f} s  {ratio:5.2f} x import torch{verdict}", flush=True)
        if not args.no_repro:
            before = project_copy(Path(tmp) / "before", args.before)
            after_repro = project_copy(Path(tmp) / "after-repro")
            seconds = {
                label: wall(["dvc", "repro", "-f"], project, environment(project))
                for label, project in ((f"before ({args.before})", before), ("after (working tree)", after_repro))
            }
            print("dvc repro -f of the default pipeline:", flush=True)
            for label, value in seconds.items():
                print(f"  {label:<28} {value:6.2f} s  {value / torch_s:5.2f} x import torch", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

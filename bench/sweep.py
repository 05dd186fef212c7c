"""Sweep throughput: 8 trials with parallelism 2 against the same sweep run serially.

In a fresh clone of this project (HEAD), after one warm-up ``dvc repro`` (so prepare and
fit_encoder are cached for every trial), it times:

1. a plain ``dvc repro`` of one trial's params (params.yaml edited, no sweep machinery);
2. ``trainflow sweep`` of ``--trials`` random trials, ``parallelism: 1``;
3. the same with ``parallelism: 2`` (another seed, so no trial is restored from the run cache).

It prints the parallel/serial wall-time ratio (issue 13's target: <= 0.65 on 2 cores, 1 thread
per trial) and the per-trial overhead of a serial sweep over the plain ``dvc repro``.

    python bench/sweep.py [--trials 8] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(command: list[str], cwd: Path) -> float:
    """Seconds ``command`` takes in ``cwd``; a failure stops the benchmark with its output."""
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    # the clone's own code (HEAD), for the plain repro as for the sweep's trials
    env = {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(cwd / "src")}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed


def spec(study: str, trials: int, epochs: int, parallelism: int, seed: int) -> dict:
    return {
        "study": study,
        "search": "random",
        "n_trials": trials,
        "parallelism": parallelism,
        "seed": seed,
        "fixed": {"train.max_epochs": epochs, "train.early_stopping.patience": 0},
        "space": {"train.optimizer.lr": {"type": "loguniform", "low": 0.0003, "high": 0.01}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    from trainflow.sweep.apply_best import set_values

    with tempfile.TemporaryDirectory(prefix="trainflow-bench-sweep-") as tmp:
        project = Path(tmp) / "project"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True)
        timed([str(BIN / "dvc"), "repro"], project)  # warm-up: the data stages, cached for every trial
        params = project / "params.yaml"
        original = params.read_text()
        one = {"train.max_epochs": args.epochs, "train.early_stopping.patience": 0, "train.optimizer.lr": 0.002}
        params.write_text(set_values(original, one))
        plain = timed([str(BIN / "dvc"), "repro"], project)
        params.write_text(original)
        walls = {}
        for parallelism, seed in ((1, 1), (2, 2)):
            name = f"bench-p{parallelism}"
            (project / f"{name}.yaml").write_text(
                yaml.safe_dump(spec(name, args.trials, args.epochs, parallelism, seed))
            )
            walls[parallelism] = timed([str(BIN / "trainflow"), "sweep", "--spec", f"{name}.yaml"], project)
    serial, parallel = walls[1], walls[2]
    per_trial = serial / args.trials
    print(f"{args.trials} trials x {args.epochs} epochs, default experiment otherwise (digits, MLP)")
    print(f"serial sweep      {serial:7.1f} s   ({per_trial:.1f} s per trial)")
    print(f"parallelism 2     {parallel:7.1f} s   ratio to serial {parallel / serial:.2f} (target <= 0.65)")
    print(
        f"plain dvc repro   {plain:7.1f} s   per-trial overhead of a sweep {per_trial - plain:+.1f} s "
        f"(ratio {per_trial / plain:.2f})"
    )


if __name__ == "__main__":
    main()

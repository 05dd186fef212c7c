"""Forecasting benchmark on the embedded co2 series: the default model against the baselines.

Runs the pipeline's stages exactly as `dvc exp run -S dataset.name=co2` does (this project's
params.yaml, the dataset switched to co2, so the model, encoder, loss and training settings
are the defaults that command gets) in a temporary copy of the project: prepare and
fit-encoder once, then train and evaluate once per seed (``seed=0..N-1``). Prints, per
horizon, the test MASE of the model as mean and spread (min..max) over the seeds next to
every baseline's, which do not depend on the seed, and where the model stands against
Holt-Winters.

    python bench/forecast.py [--seeds 3] [key=value ...]    # e.g. model.name=gru
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from trainflow.cli import main as trainflow

ROOT = Path(__file__).resolve().parents[1]


def run(root: Path, *args: str) -> None:
    """One `trainflow` command in ``root``, its output kept back unless it fails."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        code = trainflow([*args[:1], "--root", str(root), *args[1:]])
    if code != 0:
        raise SystemExit(f"trainflow {' '.join(args)} exited {code}:\n{output.getvalue()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides, as for dvc exp run -S")
    args = parser.parse_args()
    overrides = ["dataset.name=co2", *args.overrides]
    with tempfile.TemporaryDirectory(prefix="trainflow-forecast-") as tmp:
        root = Path(tmp)
        shutil.copy(ROOT / "params.yaml", root / "params.yaml")
        shutil.copytree(ROOT / "data" / "raw", root / "data" / "raw")
        run(root, "prepare", *overrides)
        run(root, "fit-encoder", *overrides)
        runs = []
        for seed in range(args.seeds):
            shutil.rmtree(root / "models", ignore_errors=True)  # each seed from scratch
            run(root, "train", f"seed={seed}", *overrides)
            run(root, "evaluate", f"seed={seed}", *overrides)
            runs.append(json.loads((root / "metrics" / "eval.json").read_text())["test"])
    horizons = sorted(runs[0], key=lambda key: int(key[1:]))
    names = [name for name in runs[0][horizons[0]] if name != "model"]
    print(f"test MASE over {args.seeds} seeds ({' '.join(overrides)}): model mean (min..max), baselines")
    print(f"{'horizon':8} {'model':>22} " + " ".join(f"{name:>20}" for name in names))
    for key in horizons:
        values = [run[key]["model"]["mase"] for run in runs]
        model = f"{statistics.mean(values):.3f} ({min(values):.3f}..{max(values):.3f})"
        print(f"{key:8} {model:>22} " + " ".join(f"{runs[0][key][name]['mase']:>20.3f}" for name in names))
    for key in horizons:
        values = [run[key]["model"]["mase"] for run in runs]
        ratio = max(values) / runs[0][key]["holt_winters"]["mase"]
        print(f"{key}: worst seed / holt_winters = {ratio:.2f} ({'beats' if ratio < 1 else 'does not beat'} it)")


if __name__ == "__main__":
    main()

"""How `trainflow prepare` and `trainflow train` scale with the number of rows of a CSV data set.

Builds CSV files (with a header) of 1x, 10x and 100x the 1797 digits rows by repeating the
rows of ``data/raw/digits.csv.gz``, and runs each stage in a fresh project folder with
``dataset.name=csv`` (the user's own-data path, see the README). For each size it prints the
wall time and the peak resident memory (``VmHWM`` of the stage's own process, read from
``/proc/self/status`` just before it exits) of prepare and of a one-epoch train, each also as a
ratio to the 1x run, and prepare's peak memory as a multiple of the CSV file's size.

Target (issue 10, item 14): prepare's peak memory at most 3x the file size (measured on a
~200 MB file: ``--file-mb 200``), and time linear in rows (the 100x ratio near 100). A
float64/int64 frame of digits would alone be 3.5x the file (2.3 bytes a value in the file, 8
in the frame), so prepare holds whole-number columns as int8 (0.43x the file), takes each
split from it by row positions and writes it in float64/int64 slices of 65,536 rows; what is
left of the peak is mostly the interpreter and its libraries (~160 MB, the 1x run's peak).

    python bench/scaling.py [--times 1 10 100] [--epochs 1] [--file-mb 0] [--no-train]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "data" / "raw" / "digits.csv.gz"
COLUMNS = [*(f"p{index}" for index in range(64)), "label"]
# Runs one trainflow command in this process and reports the process's own peak memory.
CHILD = """
import sys
from trainflow.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
print(f"VmHWM_kB={peak}", file=sys.stderr)
sys.exit(code)
"""


def write_csv(target: Path, times: int | None = None, megabytes: float | None = None) -> int:
    """Write the digits rows ``times`` times over (or until ``megabytes``) with a header; rows."""
    rows = gzip.decompress(DIGITS.read_bytes()).decode().splitlines(keepends=True)
    block = "".join(rows)
    repeats = times if times is not None else max(1, round(megabytes * 1e6 / len(block.encode())))
    with open(target, "w") as file:
        file.write(",".join(COLUMNS) + "\n")
        for _ in range(repeats):
            file.write(block)
    return repeats * len(rows)


def run_stage(stage: str, project: Path, overrides: list[str]) -> tuple[float, int]:
    """Run ``trainflow <stage>`` in ``project``; its wall seconds and peak RSS in bytes."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-c", CHILD, stage, "--params", "params.yaml", *overrides]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"error: trainflow {stage} failed in {project}:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
    peak = next(line for line in result.stderr.splitlines() if line.startswith("VmHWM_kB="))
    return elapsed, int(peak.split("=")[1]) * 1024


def project(folder: Path) -> Path:
    """A bare project folder holding this tree's params.yaml, for the stage commands."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "params.yaml", folder / "params.yaml")
    (folder / "data").mkdir(exist_ok=True)
    return folder


def measure(folder: Path, *, times: int | None, megabytes: float | None, epochs: int, train: bool) -> dict:
    """Figures for one CSV size: rows, file bytes, prepare and train seconds and peak RSS."""
    where = project(folder)
    rows = write_csv(where / "data" / "table.csv", times=times, megabytes=megabytes)
    size = (where / "data" / "table.csv").stat().st_size
    overrides = ["dataset.name=csv", "dataset.path=data/table.csv", "dataset.label_column=label"]
    figures = {"rows": rows, "bytes": size}
    figures["prepare_s"], figures["prepare_rss"] = run_stage("prepare", where, overrides)
    if train:
        (where / "data" / "table.csv").unlink()  # train reads data/prepared only
        run_stage("fit-encoder", where, overrides)
        options = [*overrides, f"train.max_epochs={epochs}"]
        figures["train_s"], figures["train_rss"] = run_stage("train", where, options)
    shutil.rmtree(where)
    return figures


HEADER = f"{'rows':>9} {'file MB':>8} | {'prepare s':>9} {'ratio':>6} {'peak MB':>8} {'ratio':>6} {'x file':>6}"


def _row(figures: dict, base: dict, *, train: bool) -> str:
    """One size's figures, times and peaks also as ratios to ``base`` (the 1x run)."""
    row = (
        f"{figures['rows']:>9} {figures['bytes'] / 1e6:>8.1f} | {figures['prepare_s']:>9.2f} "
        f"{figures['prepare_s'] / base['prepare_s']:>6.1f} {figures['prepare_rss'] / 1e6:>8.0f} "
        f"{figures['prepare_rss'] / base['prepare_rss']:>6.1f} {figures['prepare_rss'] / figures['bytes']:>6.1f}"
    )
    if train:
        row += (
            f" | {figures['train_s']:>8.2f} {figures['train_s'] / base['train_s']:>6.1f} "
            f"{figures['train_rss'] / 1e6:>8.0f} {figures['train_rss'] / base['train_rss']:>6.1f}"
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, nargs="+", default=[1, 10, 100], help="multiples of the digits rows")
    parser.add_argument("--epochs", type=int, default=1, help="train.max_epochs for the train runs")
    parser.add_argument("--file-mb", type=float, default=0, help="also prepare one CSV of about this many MB")
    parser.add_argument("--no-train", action="store_true", help="measure prepare only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scaling.") as tmp:
        results = {}
        for times in args.times:
            results[times] = measure(
                Path(tmp) / f"x{times}", times=times, megabytes=None, epochs=args.epochs, train=not args.no_train
            )
        base = results[args.times[0]]
        print(HEADER, end="")
        print("" if args.no_train else f" | {'train s':>8} {'ratio':>6} {'peak MB':>8} {'ratio':>6}")
        for figures in results.values():
            print(_row(figures, base, train=not args.no_train))
        if args.file_mb:
            big = measure(Path(tmp) / "big", times=None, megabytes=args.file_mb, epochs=args.epochs, train=False)
            print(
                f"prepare of a {big['bytes'] / 1e6:.0f} MB CSV ({big['rows']} rows): {big['prepare_s']:.1f} s, "
                f"peak RSS {big['prepare_rss'] / 1e6:.0f} MB = {big['prepare_rss'] / big['bytes']:.2f}x the file "
                "(target <= 3x)"
            )


if __name__ == "__main__":
    main()

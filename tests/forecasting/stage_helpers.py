"""Temporary forecasting projects for the stage tests: params.yaml, a series file, and the CLI.

A project holds this checkout's params.yaml with the ``dataset`` section replaced, the embedded
co2 file in ``data/raw`` and, for a ``timeseries`` run, the user's series as
``data/raw/series.csv``. Stages run either in this process (:func:`stage`, fast: torch is
imported once) or as a ``trainflow`` subprocess (:func:`cli`, which shows exactly what a user
sees: the exit code, stderr and whether a traceback escaped).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from trainflow.cli import main

REPO = Path(__file__).resolve().parents[2]
CO2_FILE = "data/raw/co2_weekly_maunaloa.csv"
SERIES_FILE = "data/raw/series.csv"
TRAINFLOW = str(Path(sys.executable).parent / "trainflow")
# the co2 copy read as a user's series: same file layout, the user's own keys
CO2_AS_TIMESERIES: dict[str, Any] = {
    "name": "timeseries",
    "path": SERIES_FILE,
    "value_column": "co2",
    "date_format": "%Y%m%d",
    "value_range": [250.0, 450.0],
}
FAST = {"train": {"max_epochs": 2, "early_stopping": {"patience": 0}}}


def co2_frame() -> pd.DataFrame:
    """The embedded co2 series as read from its CSV: ``date`` (text, YYYYMMDD) and ``co2`` (float, NaN when missing)."""
    return pd.read_csv(REPO / CO2_FILE, dtype={"date": str})


def write_series(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as a CSV with missing values empty (the way the co2 file stores them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def merge(target: dict[str, Any], updates: Mapping[str, Any]) -> None:
    """Merge ``updates`` into ``target`` key by key, nested mappings recursively."""
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value


def make_project(
    folder: Path,
    dataset: Mapping[str, Any] | None = None,
    series: pd.DataFrame | None = None,
    params: Mapping[str, Any] | None = None,
) -> Path:
    """A project in ``folder``: params.yaml with ``dataset`` (default: co2) and ``params`` merged
    in (2 epochs by default), the co2 file and, when given, ``series`` as ``data/raw/series.csv``."""
    settings = yaml.safe_load((REPO / "params.yaml").read_text())
    merge(settings, {"dataset": dict(dataset or {"name": "co2"})})
    merge(settings, FAST)
    merge(settings, params or {})
    (folder / "data" / "raw").mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    shutil.copy2(REPO / CO2_FILE, folder / CO2_FILE)
    if series is not None:
        write_series(series, folder / SERIES_FILE)
    return folder


def stage(root: Path, command: str, *overrides: str) -> int:
    """Run ``trainflow <command> [overrides]`` in this process on the project at ``root``."""
    return main([command, "--root", str(root), "--params", str(root / "params.yaml"), *overrides])


def run_stages(root: Path, *commands: str) -> None:
    """Run ``commands`` in order in this process; each must succeed."""
    for command in commands:
        assert stage(root, command) == 0, command


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``trainflow ARGS`` as a subprocess in ``root`` (what a user at a shell sees)."""
    return subprocess.run([TRAINFLOW, *args], cwd=root, capture_output=True, text=True, check=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path (empty when the folder does not exist)."""
    if not folder.exists():
        return {}
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def outputs(root: Path) -> dict[str, dict[str, bytes]]:
    """The snapshots of what the stages write: data/prepared, data/encoders, models, metrics."""
    return {name: snapshot(root / name) for name in ("data/prepared", "data/encoders", "models", "metrics")}


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``error: ...`` line a failed command printed; asserts it failed that way."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def history(root: Path) -> pd.DataFrame:
    """The train stage's plots/history.csv (one row per epoch, losses at full precision)."""
    return pd.read_csv(root / "plots" / "history.csv")


def daily_series(days: int = 240, start: str = "2021-03-01", seed: int = 0) -> pd.DataFrame:
    """A daily series with a trend, a weekly season, noise and two missing days; ISO dates."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    values = 50.0 + 0.05 * t + 5.0 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.5, days)
    values[[20, 95]] = np.nan
    dates = pd.date_range(start, periods=days, freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame({"day": dates, "sales": np.round(values, 3)})

"""The prepare stage: raw data file -> validated, split ``data/prepared/``.

Reads the file ``dataset`` selects, validates it with its pandera schema (a failure lists
every failed check and leaves ``data/prepared/`` exactly as it was), splits it by ``seed`` and
``data`` fractions, and replaces ``data/prepared/`` whole. A series (a forecasting data set)
is validated and split by time instead (:mod:`trainflow.forecasting.prepared`).
"""

from __future__ import annotations

from typing import Any

from trainflow.components.datasets import dataset_task
from trainflow.config import Config
from trainflow.data.prepare import load_dataset, split_dataset, write_prepared
from trainflow.paths import ProjectPaths


def run(config: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Prepare the dataset; returns ``{"dataset": name, "rows": {"total", "train", "val", "test"}}``."""
    if dataset_task(config.dataset) == "forecasting":
        from trainflow.forecasting.prepared import prepare_series

        return prepare_series(config, paths)
    name = config.dataset.name
    source = getattr(config.dataset, "path", "")
    print(f"prepare: reading dataset {name} {source}".rstrip(), flush=True)
    frame, info, checks = load_dataset(config, paths.root)
    print(f"prepare: {len(frame)} rows x {len(frame.columns)} columns passed the schema", flush=True)
    prepared = split_dataset(config, frame, info, checks)
    rows = prepared.report["rows"]
    print(
        f"prepare: split train {rows['train']} / val {rows['val']} / test {rows['test']} (seed {config.seed})",
        flush=True,
    )
    write_prepared(prepared, paths.prepared)
    print(f"prepare: wrote {paths.prepared}", flush=True)
    return {"dataset": name, "rows": dict(rows)}

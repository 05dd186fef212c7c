"""The package stage: build the result package ``results/`` (see :mod:`trainflow.results.package`).

The package is replaced whole or not at all, and its ``manifest.json`` (sha256 and size of
every file) is written last, so a folder with a manifest is a complete package.
"""

from __future__ import annotations

from typing import Any

from trainflow.components.datasets import dataset_task
from trainflow.config import Config
from trainflow.paths import ProjectPaths
from trainflow.results.package import build_package


def run(config: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Build the package; returns ``{"results": folder, "experiment_id": id, "files": [names]}``."""
    if dataset_task(config.dataset) == "forecasting":
        from trainflow.forecasting.package import build_series_package

        summary = build_series_package(paths, config)
    else:
        summary = build_package(paths, config)
    print(f"package: wrote {summary['results']}/ ({len(summary['files'])} files + manifest.json)", flush=True)
    return summary

"""The fit_encoder stage: fit ``encoder`` on the prepared train split, write ``data/encoders/``.

Only the train split is read, so nothing about the val and test rows leaks into the features
the model sees. ``data/encoders/`` is replaced whole, or not at all. For a series, the
forecasting encoder is fitted on the train span (:mod:`trainflow.forecasting.prepared`).
"""

from __future__ import annotations

from typing import Any

from trainflow.components.datasets import dataset_task
from trainflow.config import Config
from trainflow.data.prepare import read_info, read_split, to_arrays
from trainflow.encoders import ENCODER_FILE, fit_encoder, save_encoder
from trainflow.io import replace_dir
from trainflow.paths import ProjectPaths


def run(config: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Fit and save the encoder; returns ``{"encoder", "rows", "features", "path"}``."""
    if dataset_task(config.dataset) == "forecasting":
        from trainflow.forecasting.prepared import fit_series_encoder

        return fit_series_encoder(config, paths)
    print(f"fit-encoder: reading the train split from {paths.prepared}", flush=True)
    info = read_info(paths.prepared)
    features, _ = to_arrays(read_split(paths.prepared, "train"), info)
    name = config.encoder.name
    print(f"fit-encoder: fitting {name} on {features.shape[0]} rows x {features.shape[1]} features", flush=True)
    encoder = fit_encoder(config, features)
    path = paths.encoders / ENCODER_FILE
    # the folder is replaced whole (DVC keeps it between runs: persist in dvc.yaml), so nothing
    # an older run left there survives, and a failure leaves the previous encoder in place
    with replace_dir(paths.encoders) as staging:
        save_encoder(encoder, staging / ENCODER_FILE)
    print(f"fit-encoder: wrote {path}", flush=True)
    return {"encoder": name, "rows": int(features.shape[0]), "features": int(features.shape[1]), "path": str(path)}

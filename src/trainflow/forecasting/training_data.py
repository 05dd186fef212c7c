"""What the train stage trains a forecasting model on: windows of the train and val spans.

Each sample is a window at origin ``o``: the encoded steps ``[o-context, o)`` as inputs and the
scaled values of the next ``forecast`` steps as targets, NaN where a value is missing or the
step lies beyond the window's span (:func:`~trainflow.forecasting.windows.span_windows`), so no
training window sees a target of validation or test, and no validation window one of test.
The forecasting problem masks the NaN targets out of the loss and the metrics.
"""

from __future__ import annotations

import numpy as np

from trainflow.config import Config
from trainflow.data.datasets import DatasetInfo
from trainflow.encoders import ENCODER_FILE
from trainflow.forecasting.prepared import load_series_encoder, read_prepared_series
from trainflow.forecasting.windows import span_windows
from trainflow.paths import ProjectPaths


def window_arrays(config: Config, paths: ProjectPaths) -> tuple[DatasetInfo, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The info and ``{"train": (x, targets), "val": (x, targets)}`` of the prepared series."""
    prepared = read_prepared_series(config, paths)
    encoder = load_series_encoder(paths.encoders / ENCODER_FILE)
    series, dataset = prepared.series, config.dataset
    encoded = encoder.encode(series.values, series.dates)
    scaled = encoder.scale(series.values)
    arrays = {}
    for span in ("train", "val"):
        start, end = prepared.spans()[span]
        windows = span_windows(encoded, scaled, start, end, context=dataset.context, horizon=dataset.forecast)
        arrays[span] = (windows.x, windows.targets)
    return prepared.info, arrays

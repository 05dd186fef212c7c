"""Windowed samples for training and validation: context inputs, a multi-step target, a mask.

A sample at origin ``o`` has inputs ``encoded[o-context : o]`` (history before ``o`` only)
and targets ``scaled[o : o+horizon]``. A target step is masked out when its value is missing
or when it falls at or beyond the span's ``end``: so training windows never see a target
from validation or test (their inputs never reach past ``o-1`` either), and validation
windows keep only validation targets. Masked target values are stored as 0, never NaN, so
that no NaN reaches a gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Windows:
    """Samples ``x [N, context, F]``, ``y [N, horizon]``, ``mask [N, horizon]`` and their ``origins [N]``."""

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    origins: np.ndarray

    def __len__(self) -> int:
        return len(self.origins)

    @property
    def targets(self) -> np.ndarray:
        """``y`` with NaN at the masked-out steps: the training batches' targets (the
        forecasting problem takes its mask from them)."""
        return np.where(self.mask, self.y, np.float32("nan")).astype(np.float32)


def make_windows(
    encoded: np.ndarray,
    scaled: np.ndarray,
    origins: np.ndarray | list[int],
    *,
    context: int = 104,
    horizon: int = 52,
    end: int | None = None,
) -> Windows:
    """Windows at ``origins`` (each ``>= context``); targets at ``>= end`` are masked."""
    origins = np.asarray(origins, dtype=np.int64)
    scaled = np.asarray(scaled, dtype=float)
    end = len(scaled) if end is None else end
    if origins.size and origins.min() < context:
        raise ValueError(f"origins must be at least context={context}, got {int(origins.min())}")
    steps = origins[:, None] + np.arange(horizon)
    inside = steps < min(end, len(scaled))
    target = np.where(inside, scaled[np.minimum(steps, len(scaled) - 1)], np.nan)
    mask = ~np.isnan(target)
    history = origins[:, None] + np.arange(-context, 0)
    return Windows(
        x=np.asarray(encoded, dtype=np.float32)[history],
        y=np.where(mask, target, 0.0).astype(np.float32),
        mask=mask,
        origins=origins,
    )


def span_windows(
    encoded: np.ndarray, scaled: np.ndarray, start: int, end: int, *, context: int = 104, horizon: int = 52
) -> Windows:
    """One window per origin in ``[max(start, context), end)`` with targets before ``end`` only."""
    return make_windows(encoded, scaled, np.arange(max(start, context), end), context=context, horizon=horizon, end=end)

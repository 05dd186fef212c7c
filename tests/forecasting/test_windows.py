"""Windows: history before the origin only, targets masked where missing or outside the span."""

from __future__ import annotations

import numpy as np
import pytest

from trainflow.forecasting.windows import make_windows, span_windows


def test_a_window_holds_the_context_before_its_origin_and_the_next_steps() -> None:
    encoded = np.arange(40, dtype=np.float32).reshape(20, 2)
    scaled = np.arange(20, dtype=float)
    windows = make_windows(encoded, scaled, [5, 10], context=4, horizon=3)
    assert windows.x.shape == (2, 4, 2) and windows.y.shape == (2, 3)
    np.testing.assert_array_equal(windows.x[0, :, 0], [2, 4, 6, 8])  # rows 1..4
    np.testing.assert_array_equal(windows.y, [[5, 6, 7], [10, 11, 12]])
    assert windows.mask.all()


def test_missing_and_out_of_span_targets_are_masked_and_zero() -> None:
    scaled = np.arange(20, dtype=float)
    scaled[7] = np.nan
    windows = make_windows(np.zeros((20, 1)), scaled, [5, 8], context=4, horizon=4, end=10)
    assert windows.mask.tolist() == [[True, True, False, True], [True, True, False, False]]
    assert not np.isnan(windows.y).any() and windows.y[0, 2] == 0 and windows.y[1, 3] == 0


def test_span_windows_cover_every_origin_with_nothing_from_beyond_the_span() -> None:
    """Training windows: no target at or after ``end`` and no input from after the origin."""
    encoded = np.arange(30, dtype=np.float32).reshape(30, 1)
    scaled = np.arange(30, dtype=float)
    windows = span_windows(encoded, scaled, 0, 20, context=5, horizon=4)
    assert windows.origins.tolist() == list(range(5, 20))
    targets = np.where(windows.mask, windows.y, -1)
    assert targets.max() == 19 and windows.x.max() == 18
    assert windows.mask[-1].tolist() == [True, False, False, False]


def test_an_origin_without_full_context_is_refused() -> None:
    with pytest.raises(ValueError, match="context=4"):
        make_windows(np.zeros((10, 1)), np.zeros(10), [3], context=4, horizon=2)

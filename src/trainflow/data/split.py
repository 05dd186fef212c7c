"""Train/val/test splits: deterministic by seed, stratified by class for classification.

Both functions return sorted row indices, so a split's rows keep the file's order; the same
labels and seed give the same split on any machine (numpy's PCG64 ``Generator``).
"""

from __future__ import annotations

import numpy as np

from trainflow.errors import DataError

Split = tuple[np.ndarray, np.ndarray, np.ndarray]


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Rows for (train, val, test) out of ``n``: fractions rounded half up.

    With three rows or more, val and test get at least one row each and train keeps at least
    one, so a small class still appears in every split.
    """
    n_val = int(n * val_fraction + 0.5)
    n_test = int(n * test_fraction + 0.5)
    if n >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    while n_val + n_test >= n and n_val + n_test > 0:
        # Too few rows for train: take one back from the larger held-out split.
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n - n_val - n_test, n_val, n_test


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise DataError(f"data.{key} must be between 0 and 1 (exclusive) to leave a non-empty split, got {value}")
    if val_fraction + test_fraction >= 1:
        raise DataError(
            f"data.val_fraction + data.test_fraction must be < 1 to leave a train split "
            f"(got {val_fraction} + {test_fraction})"
        )


def _check_non_empty(split: Split, n: int, val_fraction: float, test_fraction: float) -> Split:
    for name, rows in zip(("train", "val", "test"), split, strict=True):
        if len(rows) == 0:
            raise DataError(
                f"the {name} split is empty: {n} row(s) with val_fraction={val_fraction} and "
                f"test_fraction={test_fraction}; add rows or change the fractions"
            )
    return split


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Split row indices so each class is divided in the same proportions (train, val, test).

    Each class (in sorted order) is shuffled by one Generator seeded with ``seed`` and cut by
    :func:`split_sizes`; every class with three rows or more appears in every split.
    """
    _check_fractions(val_fraction, test_fraction)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        _, n_val, n_test = split_sizes(len(rows), val_fraction, test_fraction)
        parts[1].append(rows[:n_val])
        parts[2].append(rows[n_val : n_val + n_test])
        parts[0].append(rows[n_val + n_test :])
    split = tuple(np.sort(np.concatenate(part)) if part else np.empty(0, np.int64) for part in parts)
    return _check_non_empty(split, len(labels), val_fraction, test_fraction)  # type: ignore[arg-type]


def random_split(n: int, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Split ``range(n)`` at random into (train, val, test), for regression."""
    _check_fractions(val_fraction, test_fraction)
    rows = np.random.default_rng(seed).permutation(n)
    _, n_val, n_test = split_sizes(n, val_fraction, test_fraction)
    split = (np.sort(rows[n_val + n_test :]), np.sort(rows[:n_val]), np.sort(rows[n_val : n_val + n_test]))
    return _check_non_empty(split, n, val_fraction, test_fraction)

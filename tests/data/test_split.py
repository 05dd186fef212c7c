"""Splits: deterministic by seed, stratified, disjoint, complete; empty splits are data errors."""

from __future__ import annotations

import numpy as np
import pytest

from trainflow.data.split import random_split, split_sizes, stratified_split
from trainflow.errors import DataError


def _labels() -> np.ndarray:
    # 3 classes of 100, 50 and 20 rows, interleaved so index order says nothing about class.
    labels = np.array([0] * 100 + [1] * 50 + [2] * 20)
    return labels[np.random.default_rng(0).permutation(len(labels))]


def test_same_seed_gives_the_same_split() -> None:
    first = stratified_split(_labels(), 0.2, 0.1, seed=7)
    second = stratified_split(_labels(), 0.2, 0.1, seed=7)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_seed_gives_a_different_split() -> None:
    first = stratified_split(_labels(), 0.2, 0.1, seed=7)
    second = stratified_split(_labels(), 0.2, 0.1, seed=8)
    assert not np.array_equal(first[1], second[1])


def test_splits_are_disjoint_sorted_and_cover_every_row() -> None:
    labels = _labels()
    train, val, test = stratified_split(labels, 0.2, 0.1, seed=1)
    union = np.concatenate([train, val, test])
    assert len(union) == len(set(union.tolist())) == len(labels)
    np.testing.assert_array_equal(np.sort(union), np.arange(len(labels)))
    for rows in (train, val, test):
        np.testing.assert_array_equal(rows, np.sort(rows))
        assert rows.dtype == np.int64


def test_each_class_is_split_in_the_same_proportions() -> None:
    labels = _labels()
    train, val, test = stratified_split(labels, 0.2, 0.1, seed=3)
    for label, count in ((0, 100), (1, 50), (2, 20)):
        assert np.count_nonzero(labels[val] == label) == round(count * 0.2)
        assert np.count_nonzero(labels[test] == label) == round(count * 0.1)
        assert np.count_nonzero(labels[train] == label) == count - round(count * 0.2) - round(count * 0.1)


def test_a_small_class_appears_in_every_split() -> None:
    labels = np.array([0] * 40 + [1] * 3)
    train, val, test = stratified_split(labels, 0.15, 0.15, seed=0)
    for rows in (train, val, test):
        assert 1 in labels[rows]


def test_split_sizes_keep_a_row_for_train() -> None:
    assert split_sizes(3, 0.6, 0.3) == (1, 1, 1)
    assert split_sizes(10, 0.15, 0.15) == (6, 2, 2)
    assert split_sizes(2, 0.15, 0.15) == (2, 0, 0)


@pytest.mark.parametrize(("val", "test"), [(0.0, 0.2), (0.2, 0.0), (0.5, 0.5), (1.2, 0.1)])
def test_fractions_that_leave_an_empty_split_are_data_errors(val: float, test: float) -> None:
    with pytest.raises(DataError, match="fraction"):
        stratified_split(_labels(), val, test, seed=0)
    with pytest.raises(DataError, match="fraction"):
        random_split(50, val, test, seed=0)


def test_too_few_rows_for_three_splits_is_a_data_error() -> None:
    with pytest.raises(DataError, match="the val split is empty"):
        stratified_split(np.array([0, 0, 1, 1]), 0.15, 0.15, seed=0)
    with pytest.raises(DataError, match="split is empty"):
        random_split(2, 0.15, 0.15, seed=0)


def test_random_split_is_deterministic_disjoint_and_complete() -> None:
    first = random_split(101, 0.2, 0.1, seed=5)
    again = random_split(101, 0.2, 0.1, seed=5)
    other = random_split(101, 0.2, 0.1, seed=6)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])
    assert [len(rows) for rows in first] == [71, 20, 10]
    np.testing.assert_array_equal(np.sort(np.concatenate(first)), np.arange(101))

"""Metric formatting: small values stay readable, others round to four decimals everywhere."""

from __future__ import annotations

import math

from trainflow.numbers import format_metric
from trainflow.training.progress import epoch_line


def test_small_losses_print_in_exponent_form() -> None:
    assert format_metric(0.0032) == "0.0032"
    assert format_metric(0.00032) == "3.2e-04"
    assert format_metric(-4.56e-7) == "-4.6e-07"


def test_zero_nan_and_regular_values_keep_four_decimals() -> None:
    assert format_metric(0.0) == "0.0000"
    assert format_metric(0.97769516) == "0.9777"
    assert format_metric(math.nan) == "nan"
    assert format_metric(math.inf) == "inf"


def test_epoch_line_uses_the_same_rounding() -> None:
    line = epoch_line({"epoch": 3, "train/loss": 3.2e-5, "val/accuracy": 0.97769516}, 30)
    assert line == "epoch 3/30  train/loss 3.2e-05  val/accuracy 0.9777"

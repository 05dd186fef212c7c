"""How trainflow prints a metric: the same rounding on every line a user reads."""

from __future__ import annotations

import math


def format_metric(value: float) -> str:
    """Four decimals, or two significant digits in exponent form below 0.001 (``3.2e-05``),
    so a small loss never prints as ``0.0000``."""
    if value != 0 and math.isfinite(value) and abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4f}"

"""Masked losses: the error over the target steps that exist (missing and out-of-span steps excluded)."""

from __future__ import annotations

from typing import Any

import torch


def masked_mse(outputs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the steps where ``mask`` is set (0 when none is)."""
    error = torch.where(mask, outputs - target, torch.zeros_like(outputs))
    return error.pow(2).sum() / mask.sum().clamp(min=1)


def masked_mae(outputs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the steps where ``mask`` is set (0 when none is)."""
    error = torch.where(mask, outputs - target, torch.zeros_like(outputs))
    return error.abs().sum() / mask.sum().clamp(min=1)


def build_masked_mse(config: Any = None, **context: Any) -> Any:
    """Factory for ``loss.name: masked_mse``."""
    return masked_mse


def build_masked_mae(config: Any = None, **context: Any) -> Any:
    """Factory for ``loss.name: masked_mae``."""
    return masked_mae

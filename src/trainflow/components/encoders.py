"""Config classes of the built-in feature encoders (``encoder.name``); implementations in trainflow.encoders."""

from __future__ import annotations

from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.components.base import STRICT, ComponentConfig

IMPLEMENTATION = "trainflow.encoders"


@dataclass(frozen=True, config=STRICT)
class StandardEncoderConfig(ComponentConfig):
    """Standardize each feature: ``(x - mean) / std`` over the train split."""


@dataclass(frozen=True, config=STRICT)
class MinMaxEncoderConfig(ComponentConfig):
    """Scale each feature to [0, 1]: ``(x - min) / (max - min)`` over the train split."""


@dataclass(frozen=True, config=STRICT)
class IdentityEncoderConfig(ComponentConfig):
    """Leave features as they are (cast to float32)."""


registry.encoders.declare("standard", StandardEncoderConfig, f"{IMPLEMENTATION}:StandardEncoder")
registry.encoders.declare("minmax", MinMaxEncoderConfig, f"{IMPLEMENTATION}:MinMaxEncoder")
registry.encoders.declare("identity", IdentityEncoderConfig, f"{IMPLEMENTATION}:IdentityEncoder")

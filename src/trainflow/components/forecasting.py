"""Config classes of the forecasting components, declared lazily in :mod:`trainflow.registry`.

Datasets ``co2`` (the embedded weekly Mauna Loa series) and ``timeseries`` (a user's own
CSV/parquet series), the ``forecast_standard`` encoder, the window models ``linear_window``,
``window_mlp`` and ``gru``, and the masked losses. Torch-free: validating params imports
pydantic only; the implementations live in :mod:`trainflow.forecasting`.

The embedded ``co2`` set has no ``path`` key: its file is part of trainflow (so the
``dataset.path`` of params.yaml, the digits file, does not apply to it).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.components.base import FORECASTING, STRICT, ComponentConfig, PositiveInt

IMPLEMENTATION = "trainflow.forecasting"


@dataclass(frozen=True, config=STRICT)
class ForecastProtocolConfig(ComponentConfig):
    """The protocol every forecasting dataset shares: split sizes, context and horizons (steps)."""

    task: ClassVar[str] = FORECASTING
    images: ClassVar[bool] = False
    test: PositiveInt = 208
    val: PositiveInt = 208
    context: PositiveInt = 104
    horizons: tuple[PositiveInt, ...] = (4, 13, 52)

    @property
    def forecast(self) -> int:
        """How many steps the model forecasts at once: the longest horizon."""
        return max(self.horizons)

    @field_validator("horizons")
    @classmethod
    def _distinct(cls, horizons: tuple[int, ...]) -> tuple[int, ...]:
        if not horizons or len(set(horizons)) != len(horizons):
            raise ValueError("must list at least one horizon, each once")
        return horizons

    def protocol_problem(self) -> tuple[str, str] | None:
        """``(dotted key, what is wrong)`` when the protocol's sizes do not fit together."""
        if max(self.horizons) > self.test:
            return (
                "dataset.horizons",
                f"the longest horizon ({max(self.horizons)}) must fit in test ({self.test} steps)",
            )
        return None


@dataclass(frozen=True, config=STRICT)
class CO2Config(ForecastProtocolConfig):
    """Weekly mean CO2 at Mauna Loa (ppm), 1958-2001, with missing weeks kept as empty values."""

    path: ClassVar[str] = "data/raw/co2_weekly_maunaloa.csv"
    frequency: ClassVar[str] = "W"
    season_length: ClassVar[int] = 52


@dataclass(frozen=True, config=STRICT)
class TimeseriesConfig(ForecastProtocolConfig):
    """A user's series: a date column and a value column at a fixed frequency (empty values allowed)."""

    path: str = ""
    date_column: str = "date"
    value_column: str = "value"
    date_format: str | None = None
    frequency: Literal["D", "W"] = "W"
    season_length: PositiveInt = 52
    value_range: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TimeseriesConfig:
        if not self.path:
            raise ValueError("path must name the series file (CSV or parquet, relative to the project root)")
        if self.date_column == self.value_column:
            raise ValueError("date_column and value_column must differ")
        if self.value_range is not None and self.value_range[0] >= self.value_range[1]:
            raise ValueError("value_range must be [low, high] with low < high")
        return self


@dataclass(frozen=True, config=STRICT)
class ForecastEncoderConfig(ComponentConfig):
    """Standard scaling of the target (train span only) plus season sin/cos and time features."""

    name: str = "forecast_standard"


@dataclass(frozen=True, config=STRICT)
class LinearWindowConfig(ComponentConfig):
    """NLinear (``kind: nlinear``) or DLinear (``kind: dlinear``: a moving average of
    ``trend_window`` steps; not ``kernel_size``, which params.yaml holds for the cnn)."""

    name: str = "linear_window"
    kind: Literal["nlinear", "dlinear"] = "nlinear"
    trend_window: Annotated[int, Field(ge=3, le=51)] = 25


@dataclass(frozen=True, config=STRICT)
class WindowMLPConfig(ComponentConfig):
    """An MLP on the flattened window."""

    name: str = "window_mlp"
    hidden_sizes: tuple[PositiveInt, ...] = (256,)
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


@dataclass(frozen=True, config=STRICT)
class GRUConfig(ComponentConfig):
    """A GRU over the window."""

    name: str = "gru"
    hidden_size: PositiveInt = 64
    num_layers: Annotated[int, Field(ge=1, le=4)] = 1


@dataclass(frozen=True, config=STRICT)
class MaskedLossConfig(ComponentConfig):
    """A loss over the observed target steps only."""


registry.datasets.declare("co2", CO2Config, f"{IMPLEMENTATION}.series:series_from_config")
registry.datasets.declare("timeseries", TimeseriesConfig, f"{IMPLEMENTATION}.series:series_from_config")
registry.encoders.declare("forecast_standard", ForecastEncoderConfig, f"{IMPLEMENTATION}.encoders:ForecastEncoder")
registry.models.declare("linear_window", LinearWindowConfig, f"{IMPLEMENTATION}.models:LinearWindow", FORECASTING)
registry.models.declare("window_mlp", WindowMLPConfig, f"{IMPLEMENTATION}.models:WindowMLP", FORECASTING)
registry.models.declare("gru", GRUConfig, f"{IMPLEMENTATION}.models:WindowGRU", FORECASTING)
registry.losses.declare("masked_mse", MaskedLossConfig, f"{IMPLEMENTATION}.losses:build_masked_mse", FORECASTING)
registry.losses.declare("masked_mae", MaskedLossConfig, f"{IMPLEMENTATION}.losses:build_masked_mae", FORECASTING)

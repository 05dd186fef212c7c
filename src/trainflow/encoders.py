"""Feature encoders: fitted on the train split only, saved as JSON, applied to every split.

An encoder (the interface of tsdm's encoders) is ``fit(x)`` once, then ``encode(x)`` maps raw
features to what the model sees and ``decode(x)`` maps back. ``encoder.name`` in params.yaml
selects one: ``standard`` (zero mean, unit variance per feature), ``minmax`` (each feature to
[0, 1]) or ``identity``. A constant feature (std or range 0) is scaled by 1, not divided by 0.

The fitted state is plain JSON (``save_encoder``/``load_encoder``): floats are written in
their shortest exact form, so a loaded encoder is bit-identical to the saved one; a file from
elsewhere is never unpickled.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import TypeAdapter, ValidationError

from trainflow import registry
from trainflow.components.base import ComponentConfig
from trainflow.components.encoders import IdentityEncoderConfig, MinMaxEncoderConfig, StandardEncoderConfig
from trainflow.config import Config, to_dict
from trainflow.data.json_file import read_json
from trainflow.errors import ConfigError, DataError
from trainflow.io import atomic_write_json

ENCODER_FILE = "encoder.json"
FORMAT = "trainflow.encoder"
VERSION = 1
__all__ = ["IdentityEncoderConfig", "MinMaxEncoderConfig", "StandardEncoderConfig"]  # re-exported


class Encoder(ABC):
    """Maps raw features ``[N, F]`` to model inputs and back; learns its state in ``fit``."""

    # Names of the per-feature float64 arrays that make up the fitted state.
    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ComponentConfig) -> None:
        self.config = config
        self.state: dict[str, np.ndarray] | None = None
        self.num_features: int | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def fitted(self) -> bool:
        return self.num_features is not None

    def fit(self, x: np.ndarray) -> Self:
        """Learn the state from ``x`` (the train split's features) and return ``self``."""
        x = _as_matrix(x, "fit")
        if len(x) == 0:
            raise DataError(f"encoder {self.name}: cannot fit on 0 rows")
        if not np.isfinite(x).all():
            raise DataError(f"encoder {self.name}: the features hold NaN or inf; fit needs finite values")
        self.state = self._fit(x.astype(np.float64))
        self.num_features = x.shape[1]
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Raw features ``[N, F]`` -> model inputs, float32."""
        x = self._check(x, "encode")
        return self._encode(x.astype(np.float64)).astype(np.float32)

    def decode(self, x: np.ndarray) -> np.ndarray:
        """Model inputs ``[N, F]`` -> raw features, float32; the inverse of :meth:`encode`."""
        x = self._check(x, "decode")
        return self._decode(x.astype(np.float64)).astype(np.float32)

    def _check(self, x: np.ndarray, action: str) -> np.ndarray:
        if not self.fitted:
            raise RuntimeError(f"encoder {self.name}: {action} called before fit")
        x = _as_matrix(x, action)
        if x.shape[1] != self.num_features:
            raise DataError(
                f"encoder {self.name}: fitted on {self.num_features} features, got {x.shape[1]}; "
                "run the fit-encoder stage again on the current prepared data"
            )
        return x

    @abstractmethod
    def _fit(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The fitted state (arrays named in ``state_names``) for float64 ``x``."""

    @abstractmethod
    def _encode(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _decode(self, x: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]:
        """The fitted encoder as JSON-safe data; :meth:`from_dict` is its inverse."""
        if not self.fitted or self.state is None:
            raise RuntimeError(f"encoder {self.name}: to_dict called before fit")
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "config": to_dict(self.config),
            "num_features": self.num_features,
            "state": {key: value.tolist() for key, value in self.state.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a fitted encoder from :meth:`to_dict` output; malformed data is a DataError."""
        config_data = data.get("config")
        if not isinstance(config_data, dict) or config_data.get("name") != data.get("name"):
            raise DataError(f"encoder: 'config' must be a mapping whose name is {data.get('name')!r}")
        entry = _entry(data.get("name"))
        if entry.factory is not cls:
            raise DataError(f"encoder: {entry.name!r} is registered to {entry.factory.__name__}, not {cls.__name__}")
        try:
            config = TypeAdapter(entry.config_class).validate_python(config_data)
        except ValidationError as error:
            raise DataError(f"encoder: invalid config ({error.errors()[0]['msg']})") from None
        encoder = cls(config)
        num_features = data.get("num_features")
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features < 1:
            raise DataError(f"encoder: 'num_features' must be a positive integer, got {num_features!r}")
        state = data.get("state")
        if not isinstance(state, dict) or set(state) != set(cls.state_names):
            raise DataError(f"encoder {encoder.name}: 'state' must hold exactly {', '.join(cls.state_names)}")
        arrays = {}
        for key in cls.state_names:
            values = state[key]
            if (
                not isinstance(values, list)
                or len(values) != num_features
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            ):
                raise DataError(f"encoder {encoder.name}: state.{key} must be a list of {num_features} numbers")
            array = np.asarray(values, dtype=np.float64)
            if not np.isfinite(array).all():
                raise DataError(f"encoder {encoder.name}: state.{key} holds NaN or inf")
            arrays[key] = array
        encoder.state = arrays
        encoder.num_features = num_features
        return encoder


def _as_matrix(x: np.ndarray, action: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{action}: expected a 2-D array [rows, features], got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{action}: expected real numbers, got dtype {x.dtype}")
    return x


def _nonzero(scale: np.ndarray) -> np.ndarray:
    """``scale`` with zeros (constant features) replaced by 1, so they encode to 0."""
    return np.where(scale == 0, 1.0, scale)


class StandardEncoder(Encoder):
    """``(x - mean) / std`` per feature (population std; std 0 -> 1)."""

    state_names = ("mean", "std")

    def _fit(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {"mean": x.mean(axis=0), "std": _nonzero(x.std(axis=0))}

    def _encode(self, x: np.ndarray) -> np.ndarray:
        assert self.state is not None
        return (x - self.state["mean"]) / self.state["std"]

    def _decode(self, x: np.ndarray) -> np.ndarray:
        assert self.state is not None
        return x * self.state["std"] + self.state["mean"]


class MinMaxEncoder(Encoder):
    """``(x - min) / (max - min)`` per feature (range 0 -> 1): the train split maps to [0, 1]."""

    state_names = ("min", "range")

    def _fit(self, x: np.ndarray) -> dict[str, np.ndarray]:
        low = x.min(axis=0)
        return {"min": low, "range": _nonzero(x.max(axis=0) - low)}

    def _encode(self, x: np.ndarray) -> np.ndarray:
        assert self.state is not None
        return (x - self.state["min"]) / self.state["range"]

    def _decode(self, x: np.ndarray) -> np.ndarray:
        assert self.state is not None
        return x * self.state["range"] + self.state["min"]


class IdentityEncoder(Encoder):
    """No change: for features that are already on a good scale."""

    state_names = ()

    def _fit(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def _encode(self, x: np.ndarray) -> np.ndarray:
        return x

    def _decode(self, x: np.ndarray) -> np.ndarray:
        return x


def build_encoder(config: ComponentConfig) -> Encoder:
    """The unfitted encoder ``config.name`` selects."""
    return registry.encoders.build(config)


def fit_encoder(config: Config, train_x: np.ndarray) -> Encoder:
    """The encoder ``config.encoder`` selects, fitted on ``train_x`` (the train split only)."""
    return build_encoder(config.encoder).fit(train_x)


def save_encoder(encoder: Encoder, path: Path) -> None:
    """Write the fitted encoder to ``path`` as JSON, atomically."""
    atomic_write_json(Path(path), encoder.to_dict())


def encoder_from_dict(data: Mapping[str, Any]) -> Encoder:
    """Rebuild a fitted encoder of the class registered under ``data["name"]``."""
    factory = _entry(data.get("name")).factory
    if not (isinstance(factory, type) and issubclass(factory, Encoder)):
        raise DataError(f"encoder {data.get('name')!r} is not an Encoder class, so it cannot be loaded")
    return factory.from_dict(data)


def _entry(name: Any) -> registry.Entry:
    try:
        return registry.encoders.get(str(name))
    except ConfigError:
        known = ", ".join(registry.encoders.names())
        raise DataError(f"unknown encoder {name!r}; known: {known} (list a plugin module under imports:)") from None


def load_encoder(path: Path) -> Encoder:
    """Read an encoder written by :func:`save_encoder`; a missing or malformed file is a DataError."""
    path = Path(path)
    data = read_json(
        path,
        missing="run the fit-encoder stage first (`trainflow fit-encoder`)",
        unreadable="unreadable encoder file",
        again="run the fit-encoder stage again",
    )
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{path}: not a trainflow encoder file; run the fit-encoder stage again")
    if data.get("version") != VERSION:
        raise DataError(
            f"{path}: encoder file version {data.get('version')!r}, expected {VERSION}; run fit-encoder again"
        )
    try:
        return encoder_from_dict(data)
    except DataError as error:
        raise DataError(f"{path}: {error}; run the fit-encoder stage again") from None

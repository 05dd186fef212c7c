"""Config classes of the built-in loggers (``loggers: [...]``); implementations in trainflow.training.loggers.

Each factory takes the path it writes to (a folder for tensorboard and npy, a file for csv and json).
"""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.components.base import STRICT, ComponentConfig

IMPLEMENTATION = "trainflow.training.loggers"


@dataclass(frozen=True, config=STRICT)
class TensorBoardConfig(ComponentConfig):
    name: str = "tensorboard"
    flush_secs: int = Field(default=30, ge=1)


@dataclass(frozen=True, config=STRICT)
class CSVConfig(ComponentConfig):
    name: str = "csv"


@dataclass(frozen=True, config=STRICT)
class JSONConfig(ComponentConfig):
    name: str = "json"


@dataclass(frozen=True, config=STRICT)
class NpyConfig(ComponentConfig):
    name: str = "npy"


registry.loggers.declare("tensorboard", TensorBoardConfig, f"{IMPLEMENTATION}:tensorboard")
registry.loggers.declare("csv", CSVConfig, f"{IMPLEMENTATION}:csv_logger")
registry.loggers.declare("json", JSONConfig, f"{IMPLEMENTATION}:json_logger")
registry.loggers.declare("npy", NpyConfig, f"{IMPLEMENTATION}:npy_logger")

"""The sweep spec (sweep.yaml): what to search, how, and where the study lives.

Validated by pydantic like params.yaml; every mistake is one :class:`ConfigError` naming the
dotted key (``sweep.space.train.optimizer.lr.low: ...``). Each key of ``space`` and ``fixed`` must
be a params key the project's config resolution accepts: the spec is checked by resolving
params.yaml with one override per key before any trial starts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trainflow.errors import ConfigError

DEFAULT_SPEC = "sweep.yaml"
SWEEPS_DIR = ".sweeps"
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_STRICT = ConfigDict(extra="forbid", frozen=True)


class Choice(BaseModel):
    """One of ``values`` (any YAML values: numbers, strings, lists such as ``[64, 64]``)."""

    model_config = _STRICT
    type: Literal["choice"]
    values: list[Any] = Field(min_length=1)


class Uniform(BaseModel):
    """A float drawn uniformly from ``[low, high]``."""

    model_config = _STRICT
    type: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class LogUniform(Uniform):
    """A float drawn uniformly in log space from ``[low, high]``, ``low > 0`` (learning rates)."""

    type: Literal["loguniform"]  # type: ignore[assignment]

    @model_validator(mode="after")
    def _positive(self) -> LogUniform:
        if self.low <= 0:
            raise ValueError(f"low must be > 0 for loguniform, got {self.low}")
        return self


class IntRange(BaseModel):
    """An integer from ``low`` to ``high`` inclusive, in steps of ``step``."""

    model_config = _STRICT
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if not self.low <= self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


Dimension = Annotated[Choice | Uniform | LogUniform | IntRange, Field(discriminator="type")]


class Pruner(BaseModel):
    """``median``: stop a trial whose validation metric at an epoch is worse than the median of
    the earlier trials at that epoch (after ``startup_trials`` trials and ``warmup_epochs``)."""

    model_config = _STRICT
    name: Literal["none", "median"] = "none"
    startup_trials: int = Field(default=2, ge=0)
    warmup_epochs: int = Field(default=1, ge=0)


class SweepSpec(BaseModel):
    """A whole sweep: the search, its budget and objective, the space and where results go."""

    model_config = _STRICT
    study: str = "sweep"
    search: Literal["grid", "random", "tpe"] = "random"
    n_trials: int | None = Field(default=None, gt=0)
    metric: str = "val.accuracy"
    mode: Literal["min", "max"] = "max"
    parallelism: int = Field(default=1, gt=0)
    pruner: Pruner = Pruner()
    seed: int = 0
    storage: str | None = None
    params: str = "params.yaml"
    fixed: dict[str, Any] = {}
    space: dict[str, Dimension] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if not STUDY_NAME.match(self.study):
            raise ValueError("study: letters, digits, '-' and '_' only (it names folders and DVC experiments)")
        if self.search == "grid":
            for key, dim in self.space.items():
                if not isinstance(dim, (Choice, IntRange)):
                    raise ValueError(f"space.{key}: a grid search needs choice or int dimensions, not {dim.type}")
            if self.n_trials is not None and self.n_trials > grid_size(self):
                raise ValueError(f"n_trials: {self.n_trials} is more than the grid's {grid_size(self)} points")
        elif self.n_trials is None:
            raise ValueError(f"n_trials: required for a {self.search} search (a positive integer)")
        if overlap := sorted(set(self.fixed) & set(self.space)):
            raise ValueError(f"fixed.{overlap[0]}: also in space; a key is either fixed or searched")
        return self

    @property
    def trials(self) -> int:
        """The number of trials to finish: ``n_trials``, or every grid point."""
        return self.n_trials or grid_size(self)

    def storage_url(self, root: Path) -> str:
        """``storage`` or, by default, an SQLite file in ``.sweeps/<study>/`` of the project ``root``."""
        return self.storage or f"sqlite:///{(root / SWEEPS_DIR / self.study / 'study.db').resolve()}"

    def study_dir(self, root: Path) -> Path:
        """Where the trials' workspaces, logs, ranking and plots of this study go."""
        return root / SWEEPS_DIR / self.study


def grid_values(dim: Choice | IntRange) -> list[Any]:
    """Every value a grid dimension takes."""
    return list(dim.values) if isinstance(dim, Choice) else list(range(dim.low, dim.high + 1, dim.step))


def grid_size(spec: SweepSpec) -> int:
    size = 1
    for dim in spec.space.values():
        size *= len(grid_values(dim)) if isinstance(dim, (Choice, IntRange)) else 1
    return size


def override(key: str, value: Any) -> str:
    """``key=value`` as ``dvc exp run -S`` and ``trainflow ... key=value`` read it (value as YAML)."""
    return f"{key}={json.dumps(value)}"


def _message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if not str(part).startswith(("function-", "tagged-")))
    if first["loc"] and first["loc"][-1] in ("choice", "uniform", "loguniform", "int"):
        where = ".".join(str(p) for p in first["loc"][:-1])
    text = first["msg"].removeprefix("Value error, ")
    if first["type"] == "union_tag_invalid" or first["type"] == "union_tag_not_found":
        text = "type must be one of choice, uniform, loguniform, int"
    return f"sweep.{where}: {text}" if where else f"sweep.{text}"


def parse_spec(data: Any, source: str = DEFAULT_SPEC) -> SweepSpec:
    """The validated spec from the mapping in ``source`` (its ``sweep:`` section or the whole file)."""
    if isinstance(data, dict) and set(data) == {"sweep"}:
        data = data["sweep"]
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sweep settings (study, search, space, ...)")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_message(error)}") from None


def check_keys(spec: SweepSpec, root: Path, source: str = DEFAULT_SPEC) -> None:
    """Refuse a space or fixed key that params.yaml cannot take, as the pipeline would refuse it:
    each value is checked with the fixed values set (a space may search forecasting models
    when ``fixed`` selects a series)."""
    from trainflow.config import load_config

    params = root / spec.params
    if not params.is_file():
        raise ConfigError(f"{source}: sweep.params: {spec.params} not found in {root}")
    samples: dict[str, list[Any]] = {key: [value] for key, value in spec.fixed.items()}
    for key, dim in spec.space.items():
        samples[key] = grid_values(dim) if isinstance(dim, (Choice, IntRange)) else [dim.low, dim.high]
    fixed = [override(key, value) for key, value in spec.fixed.items()]  # every trial has these
    for key, values in samples.items():
        where = "fixed" if key in spec.fixed else "space"
        for value in values:
            try:
                load_config(params, [*fixed, override(key, value)])
            except ConfigError as error:
                raise ConfigError(f"{source}: sweep.{where}.{key}: {error}") from None


def load_spec(path: str | Path, root: Path) -> SweepSpec:
    """Read, validate and check the spec file ``path`` against the project at ``root``."""
    from trainflow.params_file import load_yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: sweep spec not found (give one with --spec FILE)")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except Exception as error:  # a YAML syntax error or a limit of load_yaml: the file is at fault
        raise ConfigError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    spec = parse_spec(data, str(path))
    check_keys(spec, root, str(path))
    return spec

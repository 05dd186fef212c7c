"""The retrain acceptance rule: is the new model not worse than the last accepted one?

``retrain.metric`` names a dotted key of metrics/eval.json (``test.accuracy``), ``retrain.mode``
says whether higher (``max``) or lower (``min``) is better, and ``retrain.max_drop`` is how much
worse the new value may be. With ``max_drop: 0`` a model is accepted when it is at least as good.

The Prefect ``retrain`` flow and the CI retrain workflow decide through the same function,
:func:`decide`; the workflow reaches it through this module's command line::

    python -m tasks.acceptance [--root .] [--baseline HEAD]

It prints the verdict in one line, and exits 1 (``error: <verdict>``) when the model in the
working tree is worse than the accepted one by more than ``retrain.max_drop``, 2 on a bad
``retrain`` section or missing metrics, 0 when accepted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from trainflow.config import RetrainConfig, describe, flatten, read_params
from trainflow.errors import ConfigError, TrainflowError

#: Float noise below this is not a change (metrics are written with limited precision).
TOLERANCE = 1e-12


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing one metric of a new model with the accepted one."""

    metric: str
    mode: Literal["min", "max"]
    max_drop: float
    old: float | None
    new: float
    accepted: bool

    @property
    def worsening(self) -> float:
        """How much worse the new value is (negative: better; 0 without a baseline)."""
        if self.old is None:
            return 0.0
        return self.old - self.new if self.mode == "max" else self.new - self.old

    @property
    def message(self) -> str:
        if self.old is None:
            return f"{self.metric} = {self.new:.6g}; no accepted model to compare with, accepted as the first"
        change = f"({self.old:.6g} -> {self.new:.6g}, {self.new - self.old:+.6g})"
        if self.accepted:
            return f"{self.metric} {change}: not worse than the accepted model beyond max_drop={self.max_drop:g}"
        verb = "dropped" if self.mode == "max" else "rose"
        return (
            f"{self.metric} {verb} by {self.worsening:.6g} {change}, more than retrain.max_drop={self.max_drop:g} "
            "allows; the new model was not pushed or uploaded"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "worsening": self.worsening, "message": self.message}


def judge(metric: str, old: float | None, new: float, mode: Literal["min", "max"], max_drop: float) -> Verdict:
    """Accept when there is no accepted value yet or the new one is at most ``max_drop`` worse."""
    worse_by = 0.0 if old is None else (old - new if mode == "max" else new - old)
    return Verdict(metric, mode, max_drop, old, new, accepted=worse_by <= max_drop + TOLERANCE)


def metric_value(metrics: Mapping[str, Any], metric: str, source: str) -> float:
    """The number at dotted key ``metric`` of a metrics mapping; a missing key names the known ones."""
    flat = flatten(metrics)
    value = flat.get(metric)
    if not isinstance(value, int | float) or isinstance(value, bool):
        known = ", ".join(key for key, item in flat.items() if isinstance(item, int | float)) or "none"
        raise ConfigError(f"retrain.metric: {metric!r} is not a number in {source}; known: {known}")
    return float(value)


def retrain_rule(params_path: str | Path) -> RetrainConfig:
    """The ``retrain`` section of params.yaml, validated on its own.

    Only this section is resolved, so deciding on a model does not import every registered
    component (torch included) into the flow's process.
    """
    import trainflow.components  # noqa: F401  (declares the datasets, whose task picks the `auto` metric)
    from trainflow.config_resolve import fill_retrain_defaults, raw_task

    raw = read_params(params_path)
    if not isinstance(raw.get("retrain"), dict):
        raw["retrain"] = {}
    fill_retrain_defaults(raw, raw_task(raw.get("dataset")))
    section = raw["retrain"]
    try:
        return TypeAdapter(RetrainConfig).validate_python(section)
    except ValidationError as error:
        raise ConfigError(f"{params_path}: {describe(error, RetrainConfig, prefix='retrain')}") from None


def decide(params_path: str | Path, accepted: Mapping[str, float | None], metrics: Mapping[str, Any]) -> Verdict:
    """Apply params.yaml's ``retrain`` rule to new ``metrics`` (metrics/eval.json) and the accepted ones.

    ``accepted`` is ``{dotted key: value}`` of the accepted model ({} when there is none yet).
    """
    rule = retrain_rule(params_path)
    new = metric_value(metrics, rule.metric, "metrics/eval.json")
    return judge(rule.metric, accepted.get(rule.metric), new, rule.mode, rule.max_drop)


def _read_metrics(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no metrics of a new model; run `dvc repro` first")
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(metrics, dict):
        raise ConfigError(f"{path}: expected a JSON object of metrics")
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: judge the working tree's metrics/eval.json against ``--baseline``."""
    parser = argparse.ArgumentParser(prog="python -m tasks.acceptance", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="project root holding params.yaml (default: .)")
    parser.add_argument("--baseline", default="HEAD", help="accepted model: git revision or .json file (default: HEAD)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    from tasks.versioning import accepted_metrics
    from trainflow.training.supervisor import CommandFailed

    try:
        accepted = accepted_metrics.fn(root=str(root), baseline=args.baseline)
        verdict = decide(root / "params.yaml", accepted, _read_metrics(root / "metrics" / "eval.json"))
    except (TrainflowError, CommandFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not verdict.accepted:
        print(f"error: {verdict.message}", file=sys.stderr)
        return 1
    print(f"accepted: {verdict.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

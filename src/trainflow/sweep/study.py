"""The Optuna study behind a sweep: samplers, pruner, the trials' overrides, resuming.

* grid -> ``GridSampler`` (every point once, in an order fixed by the seed);
* random -> the ``n_trials`` proposals of ``RandomSampler(seed)`` are enqueued up front, so trial
  k has the same params in every run of the same spec, whatever the parallelism or a resume;
* tpe -> ``TPESampler(seed)`` (its proposals depend on the results so far).

The study lives in ``spec.storage_url`` (SQLite by default, any SQLAlchemy URL for many
machines); ``load_if_exists`` makes a rerun continue it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from trainflow.sweep.spec import Choice, IntRange, LogUniform, Pruner, SweepSpec, Uniform, grid_values

PRIMITIVES = (type(None), bool, int, float, str)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
RETRIED = "retried"  # user attr of a trial a killed sweep left running; its params were enqueued again


def _encode(value: Any) -> Any:
    """Optuna's categorical choices are primitives: other values (lists) travel as JSON text."""
    return value if isinstance(value, PRIMITIVES) else json.dumps(value)


def distribution(dim: Choice | Uniform | LogUniform | IntRange) -> BaseDistribution:
    if isinstance(dim, Choice):
        return CategoricalDistribution([_encode(v) for v in dim.values])
    if isinstance(dim, IntRange):
        return IntDistribution(dim.low, dim.high, step=dim.step)
    return FloatDistribution(dim.low, dim.high, log=isinstance(dim, LogUniform))


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    return {key: distribution(dim) for key, dim in spec.space.items()}


def decode(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's Optuna params -> params values (JSON-encoded choices back to lists)."""
    values = {}
    for key, value in params.items():
        dim = spec.space[key]
        if isinstance(dim, Choice):
            value = next(v for v in dim.values if _encode(v) == value)
        values[key] = value
    return values


class GridSearch(optuna.samplers.GridSampler):
    """Optuna's GridSampler without its stop request at the last point: ``study.stop`` works
    inside ``study.optimize`` only, and the sweep stops by counting trials (ask and tell)."""

    def after_trial(self, study: optuna.Study, trial: Any, state: TrialState, values: Any) -> None:
        return None


def sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    if spec.search == "grid":
        grid = {key: [_encode(v) for v in grid_values(dim)] for key, dim in spec.space.items()}  # type: ignore[arg-type]
        return GridSearch(grid, seed=spec.seed)
    if spec.search == "tpe":
        return optuna.samplers.TPESampler(seed=spec.seed)
    return optuna.samplers.RandomSampler(seed=spec.seed)


def make_pruner(settings: Pruner) -> optuna.pruners.BasePruner:
    """The Optuna pruner of the spec's ``pruner`` (the trial's train stage builds the same one)."""
    if settings.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings.startup_trials, n_warmup_steps=settings.warmup_epochs
        )
    return optuna.pruners.NopPruner()


def random_proposals(spec: SweepSpec) -> list[dict[str, Any]]:
    """The ``n_trials`` param sets ``RandomSampler(seed)`` proposes, in order (no storage needed)."""
    scratch = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=spec.seed))
    dists = distributions(spec)
    return [scratch.ask(dists).params for _ in range(spec.trials)]


def attach_study(spec: SweepSpec, root: Path) -> optuna.Study:
    """The study with the spec's sampler and pruner, created if need be, nothing else changed."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec.study_dir(root).mkdir(parents=True, exist_ok=True)
    return optuna.create_study(
        study_name=spec.study,
        storage=spec.storage_url(root),
        sampler=sampler(spec),
        pruner=make_pruner(spec.pruner),
        direction="maximize" if spec.mode == "max" else "minimize",
        load_if_exists=True,
    )


def open_study(spec: SweepSpec, root: Path) -> optuna.Study:
    """Create or continue the study; trials a killed sweep left running are failed and their
    params enqueued again, and a random search's proposals are enqueued once."""
    study = attach_study(spec, root)
    storage = study._storage
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, RETRIED, True)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
    if spec.search == "random" and not study.user_attrs.get("enqueued"):
        for params in random_proposals(spec):
            study.enqueue_trial(params)
        study.set_user_attr("enqueued", True)
    return study


def counted(study: optuna.Study) -> int:
    """Trials that count against ``n_trials``: finished (not ones re-enqueued) plus running."""
    states = (*FINISHED, TrialState.RUNNING)
    return sum(1 for t in study.get_trials(deepcopy=False, states=states) if not t.user_attrs.get(RETRIED))


def existing_study(spec: SweepSpec, root: Path) -> optuna.Study:
    """The study as a sweep left it; an error if no sweep has run yet (nothing is created)."""
    from trainflow.errors import ConfigError

    missing = ConfigError(f"sweep: no study {spec.study!r} yet; run `trainflow sweep` first")
    if spec.storage is None and not (spec.study_dir(root) / "study.db").exists():
        raise missing
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=spec.study, storage=spec.storage_url(root))
    except KeyError:
        raise missing from None

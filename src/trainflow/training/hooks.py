"""The hook list and how callbacks plug into it.

A callback is any object with some of the hook methods in :data:`HOOKS` (their order and
arguments are documented as annotated pseudocode in :mod:`trainflow.training.trainer`);
subclassing :class:`Callback` is optional. Callbacks run in ascending ``order`` (default 0),
ties in the order given. Those with ``main_process_only = True`` (the ones that write files or
print) run on the main process alone when training is distributed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from trainflow.training.trainer import Trainer

HOOKS = (
    "on_fit_start",
    "on_epoch_start",
    "on_batch_start",
    "on_before_clip",
    "on_before_optimizer_step",
    "on_batch_end",
    "on_validation_end",
    "on_epoch_end",
    "on_test_end",
    "on_fit_end",
    "on_exception",
)


class Callback:
    """Optional base class: every hook is a no-op that the trainer skips without calling."""

    order: int = 0

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer) -> None: ...
    def on_batch_start(self, trainer: Trainer, batch: Any) -> None: ...
    def on_before_clip(self, trainer: Trainer) -> None: ...
    def on_before_optimizer_step(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None: ...
    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None: ...
    def on_test_end(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...
    def on_exception(self, trainer: Trainer, error: BaseException) -> None: ...


def hook_methods(callbacks: list[Any], hook: str) -> list[Callable[..., None]]:
    """The bound ``hook`` methods of ``callbacks`` in run order, leaving out Callback's no-ops."""
    methods = []
    for callback in sorted(callbacks, key=lambda c: getattr(c, "order", 0)):
        method = getattr(callback, hook, None)
        if method is None or getattr(type(callback), hook, None) is getattr(Callback, hook):
            continue
        methods.append(method)
    return methods


def hook_table(callbacks: list[Any], main_process: bool) -> dict[str, list[Callable[..., None]]]:
    """For each hook, the methods to call in order; ``main_process_only`` callbacks are left out
    on the other processes."""
    active = [c for c in callbacks if main_process or not getattr(c, "main_process_only", False)]
    return {hook: hook_methods(active, hook) for hook in HOOKS}


def better(value: float, reference: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """True when ``value`` beats ``reference`` by more than ``min_delta`` (any value beats None)."""
    if reference is None:
        return True
    return value < reference - min_delta if mode == "min" else value > reference + min_delta

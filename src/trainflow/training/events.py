"""Hook filters: when a counter-driven callback fires, said once (as Ignite's ``every=``/``once=``).

A callback that acts every N steps or epochs holds a filter instead of modulo arithmetic::

    self.due = every(every_n_steps)          # 0: never
    ...
    if self.due(trainer.state.global_step): ...

Filters take the counter's current value, with the bases the Trainer documents:
``state.global_step`` counts optimizer steps done, ``state.epoch`` epochs done, so
``every(5)(state.epoch)`` is true at the end of epochs 5, 10, ...
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Filter:
    """True for the counter values at which a hook should act."""

    every: int = 0
    once: int = 0

    def __call__(self, count: int) -> bool:
        if self.once:
            return count == self.once
        return bool(self.every) and count > 0 and count % self.every == 0

    def __bool__(self) -> bool:
        """False for a filter that never fires (``every(0)``), so ``if self.due:`` reads naturally."""
        return bool(self.every or self.once)


def every(n: int) -> Filter:
    """Fires at counts n, 2n, 3n, ... (never for n = 0)."""
    if n < 0:
        raise ValueError(f"every: must be >= 0 (0: never), got {n}")
    return Filter(every=n)


def once(n: int) -> Filter:
    """Fires at count n alone."""
    if n < 1:
        raise ValueError(f"once: must be >= 1, got {n}")
    return Filter(once=n)

"""Stop requests from outside the loop: Ctrl-C, and agreement between DDP processes.

* :func:`stop_on_interrupt`: the first SIGINT asks the trainer to stop after the running batch,
  as a resumable stop (the :class:`~trainflow.training.callbacks.Checkpoint` callback saves that
  position and ``fit`` returns); a second Ctrl-C interrupts at once (KeyboardInterrupt). Python
  allows signal handlers in the main thread alone; elsewhere it does nothing.
* :func:`report_stop`: the line that says why a fit ended early.
* :func:`sync_stop`: every process takes the same stop decision, so all leave the loop at the
  same batch (a process leaving alone would leave the others waiting in a DDP collective).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from trainflow.training import distributed

if TYPE_CHECKING:
    from trainflow.training.trainer import Trainer


@contextlib.contextmanager
def stop_on_interrupt(trainer: Trainer) -> Iterator[None]:
    """Within the block, SIGINT sets ``trainer.interrupted`` and requests a resumable stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        trainer.interrupted = True
        trainer.request_stop("interrupted", now=trainer.model.training)  # mid-epoch, or after validation

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def sync_stop(trainer: Trainer) -> None:
    """Make every process take the same stop decision: a stop any of them requests stops all."""
    if trainer.world_size == 1:
        return
    stop, now, mid, final = distributed.count_true(
        trainer.should_stop, trainer._break_epoch, trainer.stopped_mid_epoch, not trainer.stop_resumable
    )
    if 0 < stop < trainer.world_size:  # the same counts everywhere, so every process joins this
        trainer.stop_reason = distributed.first_object(trainer.stop_reason)
    trainer.should_stop, trainer._break_epoch, trainer.stopped_mid_epoch = stop > 0, now > 0, mid > 0
    trainer.stop_resumable = final == 0


def report_stop(trainer: Trainer) -> None:
    """Say why a fit ended early: where an interrupt left it (and how to continue), or the reason
    a callback gave."""
    if trainer.interrupted:
        mid = trainer.stopped_mid_epoch
        e, b = trainer.state.epoch + (1 if mid else 0), trainer.state.batch_in_epoch
        where = f"epoch {e}, batch {b}" if mid else f"the end of epoch {e}"
        trainer.echo(f"interrupted at {where}; fit(resume=True) continues")
    elif trainer.stop_reason:
        trainer.echo(f"stopped: {trainer.stop_reason}")

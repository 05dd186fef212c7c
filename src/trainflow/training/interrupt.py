"""Ctrl-C as a resumable stop: the first SIGINT asks the trainer to stop after the running batch.

The :class:`~trainflow.training.callbacks.Checkpoint` callback then saves that position and
``fit`` returns; a second Ctrl-C interrupts at once (KeyboardInterrupt). Python allows signal
handlers in the main thread alone; elsewhere this does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

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

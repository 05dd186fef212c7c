"""Which stored training state a run of the current params may resume, and shelving the rest.

A checkpoint may be resumed only when a from-scratch run of the current params passes through
it. Raising ``train.max_epochs`` or the early-stopping patience keeps that true, lowering them
may not: after a 12-epoch run, ``train.max_epochs=3`` must not get the 12-epoch weights. The
rule is decided from the checkpoint's stored history, replayed under the current stopping
rules: if the current run would have stopped before the checkpoint's position, every
checkpoint of that run is moved to ``checkpoints/shelved/<name>/`` and training starts fresh.
A shelved run that a later run passes through again (going back to the longer params) is moved
back and resumed, so nothing is retrained twice.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trainflow.training.checkpoint import CheckpointError, latest_checkpoint, list_checkpoints, parse_name
from trainflow.training.hooks import better

SHELF = "shelved"


def stop_epoch(
    history: Sequence[Mapping[str, float]],
    max_epochs: int,
    monitor: str | None = None,
    mode: str = "min",
    patience: int = 0,
    min_delta: float = 0.0,
) -> int | None:
    """The epoch at which a from-scratch run with these rules stops, replaying ``history``
    (one record per epoch, from epoch 1); None when it would not stop within the history."""
    best: float | None = None
    wait = 0
    for record in history:
        epoch = int(record["epoch"])
        if epoch >= max_epochs:
            return max_epochs
        if patience and monitor in record and math.isfinite(value := float(record[monitor])):
            if better(value, best, mode, min_delta):
                best, wait = value, 0
            else:
                wait += 1
            if wait >= patience:
                return epoch
    return max_epochs if len(history) >= max_epochs else None


def _passes_through(payload: Mapping[str, Any], path: Path, rules: Mapping[str, Any]) -> bool:
    """True when a from-scratch run under ``rules`` reaches the position of checkpoint ``path``."""
    position = parse_name(path.name)
    if position is None:
        return False
    epochs_done, batches_into_next, _ = position
    stop = stop_epoch(payload.get("history") or [], **rules)
    return stop is None or epochs_done < stop or (epochs_done == stop and batches_into_next == 0)


def _newest(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    try:
        return latest_checkpoint(folder, report=lambda _line: None)
    except CheckpointError:
        return None


def _epochs(path: Path) -> tuple[int, int, int]:
    return parse_name(path.name) or (0, 0, 0)


def _shelve(folder: Path, newest: Path) -> Path:
    """Move every checkpoint file of ``folder`` to a new folder under ``folder/shelved/``."""
    base = folder / SHELF / newest.stem
    target, n = base, 1
    while target.exists():
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    target.mkdir(parents=True)
    for path in list_checkpoints(folder):
        os.replace(path, target / path.name)
    return target


def _unshelve(shelf: Path, folder: Path) -> None:
    for path in list_checkpoints(shelf):
        os.replace(path, folder / path.name)
    shelf.rmdir()


def select_resumable(
    folder: Path, fingerprint: str, rules: Mapping[str, Any], echo: Callable[[str], None] = print
) -> None:
    """Leave in ``folder`` only a run that the current params pass through, the furthest one.

    ``rules``: the keyword arguments of :func:`stop_epoch` for the current params. Checkpoints
    of another training config are left alone (the Trainer starts fresh and says why).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    current = _newest(folder)
    matching = current is not None and current[1].get("fingerprint") == fingerprint
    if current is not None and matching:
        path, payload = current
        if not _passes_through(payload, path, rules):
            shelf = _shelve(folder, path)
            done = _epochs(path)[0]
            echo(
                f"the checkpoint after {done} epochs is past where these params stop training: "
                f"starting fresh (kept in {shelf})"
            )
            current = None
    candidates = []
    for shelf in sorted((folder / SHELF).glob("*")) if (folder / SHELF).is_dir() else []:
        found = _newest(shelf)
        if found and found[1].get("fingerprint") == fingerprint and _passes_through(found[1], found[0], rules):
            candidates.append((_epochs(found[0]), shelf, found[0]))
    if not candidates:
        return
    position, shelf, path = max(candidates)
    if current is not None and matching and _epochs(current[0]) >= position:
        return
    if current is not None:
        _shelve(folder, current[0])
    _unshelve(shelf, folder)
    echo(f"resuming the kept run {shelf.name}: these params pass through its checkpoint {path.name}")

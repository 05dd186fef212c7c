"""The Trainer's state: counters, and the checkpoint payload that captures and restores it.

:class:`TrainState` is where training is. :func:`capture` turns a trainer into the checkpoint
dict (lis2's layout: model config and weights, optimizer, scheduler, scaler, counters, best
metric, history, callbacks' states, RNG states, loader position, the config and its training
fingerprint); :func:`restore` puts one back. :func:`find_checkpoint` picks what a resume
loads: the newest readable checkpoint whose fingerprint matches the current config.
The files themselves (names, atomic writes, safe loading) are :mod:`trainflow.training.checkpoint`'s.

Exact resume: a checkpoint holds the RNG state at the start of the running epoch and the current
one. A mid-epoch resume restores the first, rebuilds the epoch's loader iterator (so the shuffle
is drawn exactly as before), skips the batches already done (or restores a stateful loader's
position: :func:`resume_batches`), then restores the second; on CPU the result is bit-identical
to a run never stopped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trainflow.errors import CheckpointError, ConfigError
from trainflow.models.snapshot import clean_state_dict, unwrap_model
from trainflow.training import distributed
from trainflow.training.checkpoint import (
    CHECKPOINT_FORMAT,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    parse_name,
    remove_stale_temporaries,
)
from trainflow.training.seeding import get_rng_state, set_rng_state

if TYPE_CHECKING:
    from trainflow.config import Config
    from trainflow.training.trainer import Trainer


@dataclass
class TrainState:
    """Where training is; see :mod:`trainflow.training.trainer` for the counters' bases."""

    epoch: int = 0
    batch_in_epoch: int = 0
    global_step: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)


def capture(trainer: Trainer) -> dict[str, Any]:
    """Everything a resume needs, as plain data and tensors (live references: encode it to keep it)."""
    s, config = trainer.state, trainer.config
    loader_state = getattr(trainer.train_loader, "state_dict", None)
    return {
        "format": CHECKPOINT_FORMAT,
        "model": {
            "config": _to_dict(config.model) if config is not None else None,
            "build": dict(trainer.build),
            "state_dict": clean_state_dict(unwrap_model(trainer.model).state_dict()),
        },
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
        "progress": {
            "epoch": s.epoch,
            "batch_in_epoch": s.batch_in_epoch,
            "global_step": s.global_step,
            "loss_sum": trainer._loss_sum,
            "loss_batches": trainer._loss_batches,
        },
        "best": {"monitor": trainer.monitor, "mode": trainer.mode, "value": s.best_value, "epoch": s.best_epoch},
        "history": [dict(record) for record in s.history],
        "callbacks": {key: callback.state_dict() for key, callback in stateful_callbacks(trainer.callbacks)},
        "rng": {"current": get_rng_state(), "epoch_start": trainer._epoch_rng},
        "loader": {
            "epoch": s.epoch,
            "batches_done": s.batch_in_epoch,
            "state": loader_state() if callable(loader_state) else None,
        },
        "config": _experiment_dict(config) if config is not None else None,
        "fingerprint": trainer.fingerprint,
    }


def restore(trainer: Trainer, payload: Mapping[str, Any]) -> None:
    """Put back what :func:`capture` took (model, optimizer, RNG, position, ...).

    A mid-epoch position leaves ``trainer._resume_epoch`` set: the next epoch replays its
    shuffle from the epoch-start RNG state and skips the batches already done.
    """
    unwrap_model(trainer.model).load_state_dict(payload["model"]["state_dict"])
    trainer.optimizer.load_state_dict(payload["optimizer"])
    if trainer.scheduler is not None and payload["scheduler"] is not None:
        trainer.scheduler.load_state_dict(payload["scheduler"])
    if trainer.scaler is not None and payload["scaler"]:
        trainer.scaler.load_state_dict(payload["scaler"])
    progress, best = payload["progress"], payload["best"]
    trainer.state = TrainState(
        epoch=int(progress["epoch"]),
        batch_in_epoch=int(progress["batch_in_epoch"]),
        global_step=int(progress["global_step"]),
        best_value=best["value"],
        best_epoch=best["epoch"],
        # interned keys, as in a run never stopped: pickle memoises strings by identity, so a
        # snapshot of a resumed run's metrics then serialises to the same bytes
        history=[{sys.intern(key): value for key, value in record.items()} for record in payload["history"]],
    )
    trainer._loss_sum = progress["loss_sum"].to(device=trainer.device, dtype=torch.float64)
    trainer._loss_batches = int(progress["loss_batches"])
    states = payload["callbacks"]
    for key, callback in stateful_callbacks(trainer.callbacks):
        if key in states:
            callback.load_state_dict(states[key])
    set_rng_state(payload["rng"]["current"])
    trainer._epoch_rng = payload["rng"]["epoch_start"]
    trainer._accumulated = 0
    trainer._resume_epoch = None
    if trainer.state.batch_in_epoch > 0:
        trainer._resume_epoch = {
            "epoch_start": payload["rng"]["epoch_start"],
            "current": payload["rng"]["current"],
            "loader": payload["loader"]["state"],
        }


def resume(trainer: Trainer, source: bool | str | Path) -> bool:
    """Load the checkpoint ``source`` names into ``trainer`` (see ``Trainer.fit``); True when
    one was loaded. Under DDP the main process picks and reads it, and every process loads it."""
    from trainflow.training.callbacks import Checkpoint

    folder = next((c.folder for c in trainer.callbacks if isinstance(c, Checkpoint)), None)
    args = (source, folder, trainer.fingerprint, trainer.config, trainer.echo)
    found = distributed.run_on_main(find_checkpoint, *args)
    if found is None:
        return False
    path, payload = found
    restore(trainer, payload)
    trainer.resumed_from = path
    e, b, s = trainer.position
    trainer.echo(f"resumed from {path} (epochs done {e}, batches into the next {b}, optimizer steps {s})")
    return True


def resume_batches(loader: Any, resume: Mapping[str, Any], epoch: int, batches_done: int) -> Iterator[Any]:
    """The iterator over the rest of a resumed epoch: the loader's own position restored (a
    stateful loader) or ``batches_done`` batches skipped, then the RNG state of the moment the
    checkpoint was taken put back (the epoch-start state was set before the loader's shuffle)."""
    skip = 0
    if resume["loader"] is not None and callable(getattr(loader, "load_state_dict", None)):
        loader.load_state_dict(resume["loader"])
    else:
        skip = batches_done
    iterator = iter(loader)
    for done in range(skip):
        if next(iterator, None) is None:
            raise CheckpointError(
                f"the checkpoint is {skip} batches into epoch {epoch + 1} but the loader "
                f"has only {done}; resume with the same data and batch size"
            )
    set_rng_state(resume["current"])
    return iterator


def stateful_callbacks(callbacks: list[Any]) -> list[tuple[str, Any]]:
    """``(key, callback)`` for callbacks with ``state_dict``/``load_state_dict``: the class name,
    ``Name#2`` for the second of a class, and so on."""
    found: list[tuple[str, Any]] = []
    seen: dict[str, int] = {}
    for callback in callbacks:
        if callable(getattr(callback, "state_dict", None)) and callable(getattr(callback, "load_state_dict", None)):
            name = type(callback).__name__
            seen[name] = seen.get(name, 0) + 1
            found.append((name if seen[name] == 1 else f"{name}#{seen[name]}", callback))
    return found


def find_checkpoint(
    source: bool | str | Path,
    folder: Path | None,
    fingerprint: str | None,
    config: Config | None,
    echo: Callable[[str], None],
) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint a resume loads and its contents; None to start fresh.

    ``source`` True scans ``folder`` (the Checkpoint callback's) and starts fresh when nothing
    there matches ``fingerprint`` (saying why); a path (file or folder) must match or it is an
    error. Newer files that could not be read are deleted (they were reported by name).
    """
    folder = folder if source is True else Path(source)
    if folder is None:
        raise ConfigError("resume=True needs a checkpoint folder: pass checkpoint_dir= or a Checkpoint callback")
    if source is True and not folder.exists():
        return None
    scanned = folder.is_dir()
    if scanned:
        remove_stale_temporaries(folder)
        found = latest_checkpoint(folder, report=echo)
        if found is None:
            return None
        path, payload = found
    else:
        path, payload = folder, load_checkpoint(folder)
    if payload.get("fingerprint") != fingerprint:
        why = config_change(payload.get("config"), config)
        if source is not True:
            raise CheckpointError(f"{path}: made with a different training config ({why}); cannot resume from it")
        echo(f"checkpoint {path.name} was made with a different training config ({why}): starting fresh")
        return None
    if scanned:
        _drop_newer(path, echo)
    return path, payload


def _drop_newer(path: Path, echo: Callable[[str], None]) -> None:
    """Delete checkpoint files past ``path`` in its folder: they were unreadable (reported)."""
    position = parse_name(path.name)
    if position is None:
        return
    for other in list_checkpoints(path.parent):
        other_position = parse_name(other.name)
        if other_position is not None and other_position > position:
            other.unlink(missing_ok=True)
            echo(f"removed unreadable checkpoint {other}")


def fingerprint(config: Config | None) -> str | None:
    """The config's training fingerprint (None without a config: any checkpoint then matches
    only another config-less one)."""
    if config is None:
        return None
    from trainflow.config import training_fingerprint

    return training_fingerprint(config)


def config_change(stored: Mapping[str, Any] | None, config: Config | None) -> str:
    """What differs between a checkpoint's config and ``config``, in the keys that affect training."""
    if stored is None or config is None:
        return "one of them has no config"
    from trainflow.config import NON_TRAINING_SECTIONS, RESUMABLE_KEYS, diff, to_dict

    changes = {
        key: values
        for key, values in diff(stored, to_dict(config)).items()
        if key not in RESUMABLE_KEYS and key.split(".")[0] not in NON_TRAINING_SECTIONS
    }
    if not changes:
        return "the code's training fingerprint changed"
    shown = [f"{key} {old!r} -> {new!r}" for key, (old, new) in list(changes.items())[:5]]
    more = f" and {len(changes) - 5} more" if len(changes) > 5 else ""
    return ", ".join(shown) + more


def _to_dict(config: Any) -> dict[str, Any]:
    from trainflow.config import to_dict

    return to_dict(config)


def _experiment_dict(config: Any) -> dict[str, Any]:
    from trainflow.config import experiment_dict

    return experiment_dict(config)

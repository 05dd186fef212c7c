"""Checkpoint files: one dict per file, written atomically, read without running code.

Layout (after lis2): everything needed to continue a run exactly where it stopped::

    {
      "format": "trainflow.checkpoint/1",
      "model": {"config": {...} | None, "build": {...}, "state_dict": {...}},  # no module./_orig_mod. prefix
      "optimizer": {...}, "scheduler": {...} | None, "scaler": {...} | None,
      "progress": {"epoch": int,             # epochs completed
                   "batch_in_epoch": int,    # batches done in the running epoch (0 at an epoch boundary)
                   "global_step": int,       # optimizer steps done
                   "loss_sum": tensor, "loss_batches": int},  # running train loss of the epoch
      "best": {"monitor": str, "mode": str, "value": float | None, "epoch": int | None},
      "history": [{"epoch": 1, "train/loss": ..., "val/loss": ...}, ...],
      "callbacks": {name: state_dict},
      "rng": {"current": {...}, "epoch_start": {...}},   # see seeding.get_rng_state
      "loader": {"epoch": int, "batches_done": int, "state": {...} | None},
      "config": {...} | None,               # the resolved experiment config
      "fingerprint": str | None,            # config.training_fingerprint: resume only when it matches
    }

Only tensors, numbers, strings, None, lists and dicts are stored, so ``torch.load(weights_only=True)``
reads it; a file carrying any other pickled object is refused before anything in it runs.

Files are named ``ckpt-e{epoch:04d}-b{batch:06d}-s{step:08d}.pt`` (epochs completed, batches done in
the next epoch, optimizer steps), so names sort by training position. A write goes to a temporary
file that is fsynced and renamed (``trainflow.io.atomic_write``); a process killed mid-write leaves
at most a stray ``.ckpt-*.tmp`` file, never a half-written checkpoint under a real name.
:class:`CheckpointWriter` copies the state at once and leaves serialisation, write, fsync and
rename to a background thread, so training does not wait for the disk.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import re
import threading
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import torch

from trainflow.errors import CheckpointError, TrainflowError
from trainflow.io import atomic_write

CHECKPOINT_FORMAT = "trainflow.checkpoint/1"
_NAME = re.compile(r"^ckpt-e(\d{4,})-b(\d{6,})-s(\d{8,})\.pt$")

Position = tuple[int, int, int]  # (epochs completed, batches done in the running epoch, optimizer steps)


def checkpoint_name(epoch: int, batch_in_epoch: int, global_step: int) -> str:
    """The file name of the checkpoint taken at this training position."""
    return f"ckpt-e{epoch:04d}-b{batch_in_epoch:06d}-s{global_step:08d}.pt"


def parse_name(name: str) -> Position | None:
    """``(epoch, batch_in_epoch, global_step)`` from a checkpoint file name; None for other files."""
    match = _NAME.match(name)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def list_checkpoints(folder: Path) -> list[Path]:
    """The checkpoint files in ``folder``, oldest training position first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(position, path) for path in folder.iterdir() if (position := parse_name(path.name)) is not None]
    return [path for _, path in sorted(found)]


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files of writes that a killed process never finished."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for path in folder.glob(".ckpt-*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


_TENSOR = "trainflow.tensor"  # marks a packed tensor: (_TENSOR, buffer index, offset, shape)


def pack_tensors(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its tensors copied into one flat buffer per dtype and device.

    torch.save pickles every tensor separately at about 60 us each; a checkpoint holds dozens
    of small ones (weights, optimizer moments and step counters, RNG states), so writing a few
    flat buffers plus ``(marker, buffer, offset, shape)`` references makes encoding several
    times cheaper. The copy is also a snapshot: training may go on while the bytes are written.
    :func:`unpack_tensors` restores the layout with tensors that own their storage.
    """
    found: dict[int, torch.Tensor] = {}
    _collect(payload, found)
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for tensor in found.values():
        if tensor.layout == torch.strided and not tensor.is_quantized:
            groups.setdefault((tensor.dtype, tensor.device), []).append(tensor)
    buffers: list[torch.Tensor] = []
    refs: dict[int, tuple[Any, ...]] = {}
    for tensors in groups.values():
        offset = 0
        for tensor in tensors:
            refs[id(tensor)] = (_TENSOR, len(buffers), offset, list(tensor.shape))
            offset += tensor.numel()
        buffers.append(torch.cat([tensor.detach().reshape(-1) for tensor in tensors]))
    return {"format": payload.get("format"), "packed": {"buffers": buffers, "tree": _replace(payload, refs)}}


def unpack_tensors(packed: dict[str, Any]) -> dict[str, Any]:
    """The payload that :func:`pack_tensors` packed, each tensor with a storage of its own."""
    buffers = packed["packed"]["buffers"]

    def restore(value: Any) -> Any:
        if isinstance(value, tuple) and len(value) == 4 and value[0] == _TENSOR:
            _, index, offset, shape = value
            size = math.prod(shape)
            return buffers[index][offset : offset + size].view(shape).clone()
        if isinstance(value, dict):
            return {key: restore(item) for key, item in value.items()}
        if isinstance(value, list):
            return [restore(item) for item in value]
        if isinstance(value, tuple):
            return tuple(restore(item) for item in value)
        return value

    return restore(packed["packed"]["tree"])


def _collect(value: Any, found: dict[int, torch.Tensor]) -> None:
    if isinstance(value, torch.Tensor):
        found[id(value)] = value
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, found)


def _replace(value: Any, refs: dict[int, Any]) -> Any:
    if isinstance(value, torch.Tensor):
        return refs.get(id(value), value)
    if isinstance(value, dict):
        return {key: _replace(item, refs) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, refs) for item in value]
    if isinstance(value, tuple):
        return tuple(_replace(item, refs) for item in value)
    return value


def write_data(file: IO[bytes], packed: dict[str, Any]) -> None:
    """Serialise a :func:`pack_tensors` payload into the (temporary) file being written."""
    torch.save(packed, file)


def save_checkpoint(path: Path, payload: dict[str, Any], fsync: bool = True) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, rename)."""
    write_packed(path, pack_tensors(payload), fsync=fsync)


def write_packed(path: Path, packed: dict[str, Any], fsync: bool = True) -> None:
    """Write a :func:`pack_tensors` payload to ``path`` atomically (temporary file, fsync, rename)."""
    atomic_write(Path(path), lambda file: write_data(file, packed), fsync=fsync)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FORBIDDEN_GLOBAL = re.compile(
    r"\bGLOBAL ([\w.]+)"
)  # "Unsupported global: GLOBAL x.y", "unsupported GLOBAL x.y whose module x is blocked"
_UNPICKLER_ERROR = re.compile(r"WeightsUnpickler error:\s*([^\n]+)")


def refusal_reason(error: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words, as one line.

    PyTorch's message spans many lines, carries terminal colour codes and recommends loading
    with the protection turned off; only the forbidden global (or the unpickler's own reason)
    is kept, so the advice never reaches the user.
    """
    text = _ANSI.sub("", str(error))
    if found := _FORBIDDEN_GLOBAL.search(text):
        return f"it names the global {found[1]}, which is neither a tensor nor plain data; nothing in it was run"
    if found := _UNPICKLER_ERROR.search(text):
        first_sentence = found[1].split(". ")[0].strip().rstrip(".")
        return f"it holds pickled data other than tensors and plain data ({first_sentence[:120]})"
    return "it holds pickled data other than tensors and plain data"


def safe_torch_load(path: Path, what: str, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; every failure is one CheckpointError line.

    The one place this package reads torch files: a file that carries an object other than
    tensors and plain data is refused by the restricted unpickler before anything in it runs,
    and the error names the file, what it was read as (``what``) and the refused object.
    """
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol would add a warning to the error line
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path}: refused to load this {what}: {refusal_reason(error)}") from None
    except Exception as error:  # any failure to parse untrusted bytes means "not a torch file"
        lines = _ANSI.sub("", str(error)).strip().splitlines() or [type(error).__name__]
        reason = f"{type(error).__name__}: {lines[0][:200]}"
        if "weights_only" in reason:
            reason = type(error).__name__
        raise CheckpointError(f"{path}: unreadable {what} ({reason})") from None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read the checkpoint at ``path`` with ``weights_only=True``.

    A missing, truncated or garbled file, or one that carries a pickled object other than
    tensors and plain data, is a :class:`CheckpointError` naming the file. Nothing in the file
    is executed: the restricted unpickler refuses unknown globals before building them.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    payload = safe_torch_load(path, "checkpoint", map_location=map_location)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or "packed" not in payload:
        raise CheckpointError(f"{path}: not a trainflow checkpoint (expected format {CHECKPOINT_FORMAT})")
    try:
        return unpack_tensors(payload)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(error).__name__}: {error})") from None


def latest_checkpoint(
    folder: Path, report: Callable[[str], None] = print, map_location: str | torch.device = "cpu"
) -> tuple[Path, dict[str, Any]] | None:
    """The newest readable checkpoint in ``folder`` and its contents, or None when there is none.

    Unreadable files (truncated by a crash, garbled, or carrying foreign objects) are reported
    by name through ``report`` and skipped in favour of the previous one.
    """
    for path in reversed(list_checkpoints(folder)):
        try:
            return path, load_checkpoint(path, map_location=map_location)
        except CheckpointError as error:
            report(f"warning: {error}; using the previous checkpoint")
    return None


class CheckpointWriter:
    """Writes checkpoints one at a time; the disk part on a background thread.

    ``submit`` packs the payload's tensors on the calling thread (:func:`pack_tensors`: a copy, so
    a consistent snapshot of the training state at that moment, made in a few large tensor
    copies), then hands it to a thread that serialises, writes, fsyncs and renames it; fsync,
    the slow part, releases the GIL. It first waits for the previous write, so at most one is in
    flight and files appear in training order. ``after`` runs on the
    writer once the file is in place (used to delete checkpoints that fall out of the retention
    policy). An error in a background write is raised by the next ``submit`` or ``wait``.
    """

    def __init__(self, background: bool = True, fsync: bool = True) -> None:
        self.background = background
        self.fsync = fsync
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, path: Path, payload: dict[str, Any], after: Callable[[], None] | None = None) -> None:
        """Snapshot ``payload`` now, write it to ``path`` (in the background), then call ``after``."""
        packed = pack_tensors(payload)
        self.wait()
        if not self.background:
            self._write(path, packed, after)
            self._raise()
            return
        self._thread = threading.Thread(
            target=self._write, args=(path, packed, after), name="trainflow-checkpoint", daemon=True
        )
        self._thread.start()

    def _write(self, path: Path, packed: dict[str, Any], after: Callable[[], None] | None) -> None:
        try:
            write_packed(path, packed, fsync=self.fsync)
            if after is not None:
                after()
        except BaseException as error:
            self._error = error

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk; re-raise its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            if isinstance(error, (OSError, TrainflowError)) and not isinstance(error, CheckpointError):
                raise CheckpointError(f"cannot write checkpoint: {error}") from error
            raise error


def delete_except(folder: Path, keep: Iterable[str]) -> None:
    """Delete the checkpoint files in ``folder`` whose names are not in ``keep``."""
    kept = set(keep)
    for path in list_checkpoints(folder):
        if path.name not in kept:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

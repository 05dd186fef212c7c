"""The part of a result package that scores new data: weights, encoder, labels, input schema.

Beside the reports, a package holds::

    model.safetensors    the weights (safetensors: tensors only, nothing to unpickle)
    encoder.json         the encoder fitted on the train split (data/encoders/encoder.json)
    input_schema.json    feature names, dtypes, declared and train-split ranges; the label
    model.json           what to rebuild: the data set info (task, features, label classes,
                         image shape), the experiment id, the batch size, these file names

With ``config.yaml`` (the resolved config, whose ``model`` section the registry rebuilds)
that is all :func:`trainflow.load_model` needs: no project checkout, no pickle, no import of
code named by the package. Every file is a function of the run alone, so rebuilds are
bit-identical.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainflow.errors import CheckpointError
from trainflow.io import atomic_write_bytes, atomic_write_json
from trainflow.paths import INPUT_SCHEMA_FILE, MODEL_FILE, WEIGHTS_FILE
from trainflow.paths import PACKAGE_ENCODER_FILE as ENCODER_FILE
from trainflow.paths import RESOLVED_CONFIG as CONFIG_FILE

if TYPE_CHECKING:
    import torch

FORMAT = "trainflow.package/1"


def model_record(experiment_id: str, info: Mapping[str, Any], batch_size: int, epoch: int | None) -> dict[str, Any]:
    """The content of ``model.json``; ``info`` is :meth:`DatasetInfo.to_dict` output."""
    return {
        "format": FORMAT,
        "experiment_id": experiment_id,
        "info": dict(info),
        "batch_size": batch_size,
        "epoch": epoch,
        "files": {"weights": WEIGHTS_FILE, "encoder": ENCODER_FILE, "config": CONFIG_FILE},
    }


def state_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    """The state dict as safetensors bytes without metadata (tensors contiguous, on CPU).

    The evaluate stage writes these beside its metrics; :func:`package_weights` stamps them
    for the package without torch.
    """
    from safetensors.torch import save as save_safetensors  # torch only where tensors are made

    return save_safetensors({key: value.detach().cpu().contiguous() for key, value in sorted(state.items())})


def package_weights(data: bytes, experiment_id: str) -> bytes:
    """Safetensors bytes (:func:`state_bytes`) re-written with the package's metadata.

    Goes through numpy (``safetensors.numpy``), which writes the same bytes as the torch
    writer for the same tensors, so packaging imports no torch. The metadata is one key:
    safetensors writes a metadata map in hash order, so several keys would make the bytes
    differ from build to build.
    """
    from safetensors.numpy import load, save

    try:
        arrays = load(data)
    except Exception as error:  # safetensors raises its own SafetensorError for a damaged header
        raise CheckpointError(f"not a readable safetensors file ({str(error)[:200]})") from None
    metadata = json.dumps({"experiment_id": experiment_id, "format": FORMAT}, sort_keys=True)
    return save(dict(sorted(arrays.items())), metadata={"trainflow": metadata})


def weights_bytes(state: Mapping[str, torch.Tensor], experiment_id: str) -> bytes:
    """The state dict as the package's ``model.safetensors`` bytes (same state, same bytes)."""
    return package_weights(state_bytes(state), experiment_id)


def write_model_files(
    folder: Path,
    *,
    weights: Path,
    record: Mapping[str, Any],
    encoder: Mapping[str, Any],
    input_schema: Mapping[str, Any],
) -> list[str]:
    """Write the weights (the :func:`state_bytes` file ``weights``, stamped by
    :func:`package_weights`), encoder, input schema and model.json into ``folder``; the names
    written. Imports no torch: the weights were saved by the stage that loaded the model."""
    folder = Path(folder)
    atomic_write_bytes(folder / WEIGHTS_FILE, package_weights(Path(weights).read_bytes(), str(record["experiment_id"])))
    atomic_write_json(folder / ENCODER_FILE, dict(encoder))
    atomic_write_json(folder / INPUT_SCHEMA_FILE, dict(input_schema))
    atomic_write_json(folder / MODEL_FILE, dict(record))
    return [WEIGHTS_FILE, ENCODER_FILE, INPUT_SCHEMA_FILE, MODEL_FILE]


def read_json(path: Path, what: str) -> Any:
    """A JSON file of a package; a missing or malformed one is a CheckpointError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: not found; not a complete result package (rebuild it: trainflow package)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: unreadable {what} ({error})") from None


def read_model_record(path: Path) -> dict[str, Any]:
    """``model.json``, checked for its format."""
    record = read_json(path, "model record")
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("info"), dict):
        raise CheckpointError(f"{path}: not a trainflow package model record ({FORMAT} expected)")
    return record


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in a safetensors file (no code can run while loading it)."""
    from safetensors.torch import load as load_safetensors

    try:
        return load_safetensors(Path(path).read_bytes())
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: not found; not a complete result package (rebuild it: trainflow package)"
        ) from None
    except Exception as error:  # safetensors raises its own SafetensorError for a damaged header
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(error)[:200]})") from None

"""Model snapshots: the one weight format for models/best.pt, models/last.pt and EndSave's model.pt.

A snapshot is one dict saved with ``torch.save`` and loaded with ``weights_only=True``, so a
snapshot received from someone else cannot run code. It holds the resolved config (to rebuild
the model through the registry), the data set info (input size, classes) and the state dict
without any ``module.`` (DDP) or ``_orig_mod.`` (torch.compile) prefix. A model trained
without a config (plain PyTorch objects) is saved the same way with ``config`` and ``info``
None: its ``model_state`` loads into the user's own module.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainflow import config as config_module
from trainflow import registry
from trainflow.errors import CheckpointError
from trainflow.io import atomic_write_bytes
from trainflow.training.checkpoint import safe_torch_load

SNAPSHOT_FORMAT = "trainflow.model/1"
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict with DDP's ``module.`` and torch.compile's ``_orig_mod.`` prefixes removed."""
    cleaned = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        cleaned[key] = value
    return cleaned


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user's module inside DDP / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_model_snapshot(path: Path, model: nn.Module, config: Any, info: Any, **extra: Any) -> None:
    """Write ``model`` with its config and data set info to ``path`` atomically.

    ``info`` is a DatasetInfo or its dict; ``config`` and ``info`` may be None (a model built
    by hand). ``extra`` holds small plain values (epoch, metrics) stored beside the weights.
    """
    state = {key: value.detach().cpu() for key, value in clean_state_dict(unwrap_model(model).state_dict()).items()}
    snapshot = {
        "format": SNAPSHOT_FORMAT,
        "experiment_id": config_module.experiment_id(config) if config is not None else None,
        "config": config_module.experiment_dict(config) if config is not None else None,
        "info": info if info is None or isinstance(info, dict) else info.to_dict(),
        "model_state": state,
        **extra,
    }
    buffer = io.BytesIO()
    torch.save(snapshot, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def read_snapshot(path: Path) -> dict[str, Any]:
    """The snapshot dict at ``path``, loaded safely; a bad file is a CheckpointError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: model snapshot not found; run the train stage first (dvc repro train)")
    snapshot = safe_torch_load(path, "model snapshot")
    if not isinstance(snapshot, dict) or snapshot.get("format") != SNAPSHOT_FORMAT:
        raise CheckpointError(f"{path}: not a trainflow model snapshot (format {SNAPSHOT_FORMAT} expected)")
    return snapshot


def load_model_snapshot(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored at ``path`` (through the registry) and load its weights.

    The stored config is data: it imports nothing, so a plug-in model is rebuilt only when the
    current params.yaml's ``imports:`` (or the caller) has registered it.
    """
    from trainflow.data.datasets import DatasetInfo

    snapshot = read_snapshot(path)
    if snapshot.get("config") is None and isinstance(snapshot.get("model_state"), dict):
        raise CheckpointError(
            f"{path}: saved without a config, so the model cannot be rebuilt from it; build the model "
            "yourself and load_state_dict(read_snapshot(path)['model_state'])"
        )
    if not all(isinstance(snapshot.get(key), dict) for key in ("config", "info", "model_state")):
        raise CheckpointError(f"{path}: damaged model snapshot (config, info and model_state expected)")
    config = config_module.resolve(snapshot["config"], source=f"{path} (stored config)", plugins=False)
    info = DatasetInfo.from_dict(snapshot["info"])
    model = build_model(config, info)
    try:
        model.load_state_dict(snapshot["model_state"])
    except (RuntimeError, TypeError, KeyError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(f"{path}: the weights do not fit the stored model config ({reason[:200]})") from None
    model.eval()
    return model, snapshot


def build_model(config: Any, info: Any) -> nn.Module:
    """The model ``config.model`` selects, sized for the data set described by ``info``.

    Here rather than in :mod:`trainflow.build` so that rebuilding a snapshot (evaluate, package,
    predict) imports the model registry alone, not the training loop."""
    if info.task == "forecasting":  # windows of `context` steps -> the longest horizon's steps
        dataset = config.dataset
        return registry.models.build(
            config.model, context=dataset.context, horizon=dataset.forecast, in_features=info.num_features
        )
    return registry.models.build(
        config.model, in_features=info.num_features, num_outputs=info.num_outputs, image_shape=info.image_shape
    )

"""Export a trained model as ONNX or TorchScript, with its encoder folded in.

The exported graph takes the raw features (float32 ``[rows, features]``, in training order)
and computes what the predictor does: the encoder's affine map in float64, a cast to
float32 (as :meth:`Encoder.encode`), then the model. Its outputs are ``outputs`` (logits, or
the predicted value) and, for classification, ``probabilities`` (softmax). Class labels,
feature names and the experiment id travel as ONNX metadata, so a runtime without trainflow
can name its outputs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainflow.errors import DataError
from trainflow.io import atomic_write_bytes

FORMATS = ("onnx", "torchscript")
DEFAULT_OUTPUT = {"onnx": Path("exports/model.onnx"), "torchscript": Path("exports/model.torchscript.pt")}
OPSET = 17
# Encoder state -> (offset, scale) of ``(x - offset) / scale``; identity has no state.
AFFINE_STATES = {("mean", "std"): ("mean", "std"), ("min", "range"): ("min", "range")}


class RawFeaturesModel(nn.Module):
    """``model(((x.double() - offset) / scale).float())``: the encoder and the model in one module."""

    def __init__(self, model: nn.Module, offset: np.ndarray, scale: np.ndarray, probabilities: bool) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("offset", torch.from_numpy(np.asarray(offset, dtype=np.float64)))
        self.register_buffer("scale", torch.from_numpy(np.asarray(scale, dtype=np.float64)))
        self.probabilities = probabilities

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(((x.double() - self.offset) / self.scale).float())
        if self.probabilities:
            return outputs, torch.softmax(outputs.float(), dim=1)
        return (outputs,)


def affine(encoder: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(offset, scale)`` with ``encode(x) == (x - offset) / scale``; other encoders cannot be folded."""
    names = tuple(encoder.state_names)
    if not names:
        width = int(encoder.num_features)
        return np.zeros(width), np.ones(width)
    if names not in AFFINE_STATES:
        raise DataError(
            f"encoder {encoder.name!r} is not an affine map (x - offset) / scale, so it cannot be folded into an "
            "exported model; export supports the standard, minmax and identity encoders"
        )
    offset, scale = AFFINE_STATES[names]
    return np.asarray(encoder.state[offset]), np.asarray(encoder.state[scale])


def raw_features_model(predictor: Any) -> RawFeaturesModel:
    """The predictor's encoder and model as one module in eval mode."""
    offset, scale = affine(predictor.encoder)
    module = RawFeaturesModel(predictor.model, offset, scale, predictor.task == "classification")
    return module.eval()


def output_names(predictor: Any) -> list[str]:
    return ["outputs", "probabilities"] if predictor.task == "classification" else ["outputs"]


def onnx_bytes(predictor: Any) -> bytes:
    """The ONNX model (batch size dynamic) with trainflow's metadata."""
    import onnx

    module = raw_features_model(predictor)
    example = torch.zeros(2, len(predictor.feature_columns), dtype=torch.float32)
    names = output_names(predictor)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=["features"],
            output_names=names,
            dynamic_axes={"features": {0: "rows"}, **{name: {0: "rows"} for name in names}},
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    metadata = {
        "trainflow.experiment_id": predictor.experiment_id,
        "trainflow.task": predictor.task,
        "trainflow.feature_columns": json.dumps(predictor.feature_columns),
        "trainflow.classes": json.dumps(predictor.classes),
    }
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()


def torchscript_bytes(predictor: Any) -> bytes:
    """The TorchScript module (traced; batch size dynamic) with the metadata as an extra file."""
    module = raw_features_model(predictor)
    example = torch.zeros(2, len(predictor.feature_columns), dtype=torch.float32)
    with torch.no_grad():
        traced = torch.jit.trace(module, (example,), check_trace=False)
    extra = {
        "trainflow.json": json.dumps(
            {
                "experiment_id": predictor.experiment_id,
                "task": predictor.task,
                "feature_columns": predictor.feature_columns,
                "classes": predictor.classes,
                "outputs": output_names(predictor),
            }
        )
    }
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files=extra)
    return buffer.getvalue()


def export_model(predictor: Any, fmt: str, output: Path) -> Path:
    """Write ``predictor`` as ``fmt`` (onnx or torchscript) to ``output``, atomically."""
    if fmt not in FORMATS:
        raise DataError(f"export format {fmt!r}: use one of {', '.join(FORMATS)}")
    data = onnx_bytes(predictor) if fmt == "onnx" else torchscript_bytes(predictor)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(output, data)
    return output


def export_command(fmt: str, source: str | None, output: str | None) -> dict[str, Any]:
    """``trainflow export``: load the model at ``source`` and write it as ``fmt``."""
    from trainflow.predict import load_model

    predictor = load_model(source)
    path = export_model(predictor, fmt, Path(output) if output else DEFAULT_OUTPUT[fmt])
    print(
        f"export: {fmt} -> {path} (raw features {predictor.feature_columns[0]}..{predictor.feature_columns[-1]} in; "
        f"{', '.join(output_names(predictor))} out; experiment {predictor.experiment_id})",
        flush=True,
    )
    return {"format": fmt, "output": str(path)}

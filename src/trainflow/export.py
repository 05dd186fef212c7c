"""Export a trained model as ONNX or TorchScript, with its encoder folded in.

The exported graph takes the raw features (float32 ``[rows, features]``, in training order)
and computes what the predictor does: the encoder's affine map in float64, a cast to
float32 (as :meth:`Encoder.encode`), then the model. Its outputs are ``outputs`` (logits, or
the predicted value) and, for classification, ``probabilities`` (softmax). Class labels,
feature names and the experiment id travel as ONNX metadata, so a runtime without trainflow
can name its outputs.

A forecasting model is exported on its windows: input ``windows`` (float32 ``[N, context,
features]``, as the encoder builds them: see :mod:`trainflow.forecasting.encoders`, whose
fitted state travels as the metadata ``trainflow.encoder``), output ``forecast`` (the next
steps in the series' units: the decoding is folded in).
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
from trainflow.results.exports import EXPORT_FILES

FORMATS = tuple(EXPORT_FILES)
DEFAULT_OUTPUT = {fmt: Path("exports") / name for fmt, name in EXPORT_FILES.items()}
OPSET = 17
# Records torch's archive writer makes itself: copying them would write them twice.
SELF_DESCRIBING_RECORDS = (".data/serialization_id", "byteorder")
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


class DecodedForecastModel(nn.Module):
    """``model(windows).double() * std + mean``: a window model with its forecasts decoded."""

    def __init__(self, model: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float64))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float64))

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.model(windows).double() * self.std + self.mean,)


def export_parts(predictor: Any) -> tuple[nn.Module, torch.Tensor, str, list[str], dict[str, Any]]:
    """``(module, example input, input name, output names, metadata)`` of the model to export."""
    metadata: dict[str, Any] = {"experiment_id": predictor.experiment_id, "task": predictor.task}
    if predictor.task == "forecasting":
        encoder = predictor.encoder
        module = DecodedForecastModel(predictor.model, encoder.mean, encoder.std).eval()
        example = torch.zeros(2, predictor.context, len(predictor.info.feature_columns), dtype=torch.float32)
        metadata.update(
            feature_columns=list(predictor.info.feature_columns),
            context=predictor.context,
            forecast=predictor.steps,
            encoder=json.loads(encoder.to_json()),
        )
        return module, example, "windows", ["forecast"], metadata
    example = torch.zeros(2, len(predictor.feature_columns), dtype=torch.float32)
    metadata.update(feature_columns=predictor.feature_columns, classes=predictor.classes)
    return raw_features_model(predictor), example, "features", output_names(predictor), metadata


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

    module, example, input_name, names, metadata = export_parts(predictor)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=[input_name],
            output_names=names,
            dynamic_axes={input_name: {0: "rows"}, **{name: {0: "rows"} for name in names}},
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"trainflow.{key}", value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def torchscript_bytes(predictor: Any) -> bytes:
    """The TorchScript module (traced; batch size dynamic) with the metadata as an extra file."""
    module, example, _, names, metadata = export_parts(predictor)
    with torch.no_grad():
        traced = torch.jit.trace(module, (example,), check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files={"trainflow.json": json.dumps({**metadata, "outputs": names})})
    return without_debug_records(buffer.getvalue())


def without_debug_records(archive: bytes) -> bytes:
    """The TorchScript archive without its ``*.debug_pkl`` records, rewritten by torch's own
    archive writer (which derives the serialization id from the remaining records).

    Those records hold the tracing call stack with absolute source paths, so the file's bytes
    would depend on where trainflow is installed and on who called the export; without them
    they depend on the model alone (``trainflow export`` and ``package.export`` write the same
    file). Loading needs none of them: they only locate TorchScript errors in Python source.
    """
    reader = torch._C.PyTorchFileReader(io.BytesIO(archive))
    buffer = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(buffer)
    for name in reader.get_all_records():
        if name.endswith(".debug_pkl") or name in SELF_DESCRIBING_RECORDS:
            continue
        data = reader.get_record(name)
        writer.write_record(name, data, len(data))
    writer.write_end_of_file()
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
    _, example, input_name, names, _ = export_parts(predictor)
    shape = "x".join(["N", *(str(size) for size in example.shape[1:])])
    print(
        f"export: {fmt} -> {path} ({input_name} [{shape}] in; {', '.join(names)} out; "
        f"experiment {predictor.experiment_id})"
    )
    return {"format": fmt, "output": str(path)}

"""The exported models a result package ships when ``package.export`` asks for them.

They are made from the package's own model files (weights, encoder, input schema), read as
``trainflow.load_model(results)`` reads them, before the manifest that lists them too is
written. Nothing is imported (torch included) when ``package.export`` is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

EXPORT_FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}


def write_exports(staging: Path, formats: Sequence[str]) -> None:
    """Write each format's file into the package being built in ``staging``."""
    if not formats:
        return
    from trainflow.export import export_model
    from trainflow.predict import read_package

    predictor = read_package(staging)
    for fmt in formats:
        export_model(predictor, fmt, staging / EXPORT_FILES[fmt])
        print(f"package: exported {fmt} -> {EXPORT_FILES[fmt]}", flush=True)

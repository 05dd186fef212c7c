"""The exported models a result package ships when ``package.export`` asks for them.

They are made from the package's own model files (weights, encoder, input schema), after a
first manifest lets the package load as any package does, so an export is the model that
``trainflow.load_model(results)`` returns; the final manifest then lists them too.
Nothing is imported (torch included) when ``package.export`` is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

EXPORT_FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}


def write_exports(staging: Path, formats: Sequence[str], experiment_id: str) -> list[str]:
    """Write each format's file into the package being built in ``staging``; their names."""
    if not formats:
        return []
    from trainflow.export import export_model
    from trainflow.predict import load_package
    from trainflow.storage.manifest import write_manifest

    write_manifest(staging, experiment_id=experiment_id)
    predictor = load_package(staging)
    for fmt in formats:
        export_model(predictor, fmt, staging / EXPORT_FILES[fmt])
        print(f"package: exported {fmt} -> {EXPORT_FILES[fmt]}", flush=True)
    return [EXPORT_FILES[fmt] for fmt in formats]

"""Artifact storage: manifests, uploads to ``file://`` or ``s3://`` targets, verified downloads.

``download_package`` is imported on first use, so that reading a manifest costs no boto import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainflow.storage.download import download_package

__all__ = ["download_package"]


def __getattr__(name: str) -> Any:
    if name == "download_package":
        from trainflow.storage.download import download_package

        return download_package
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

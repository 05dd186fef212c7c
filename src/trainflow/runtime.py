"""The CPU code paths a run uses, pinned so that the same params give the same bits on every CPU.

PyTorch picks its CPU kernels when it starts (``ATEN_CPU_CAPABILITY``: default, avx2, avx512),
and so do MKL (``MKL_CBWR``) and oneDNN (``ONEDNN_MAX_CPU_ISA``). Two x86 machines that differ
only in AVX-512 train the same model to different bits (losses differ in the 7th digit). The
pipeline's stages therefore pin all three to AVX2, which every x86-64 CPU of the last decade
has, before torch is imported. ``TRAINFLOW_CPU_KERNELS=native`` keeps each library's own
choice (faster on AVX-512 machines, but bits then depend on the CPU); a variable the user set
explicitly is never overridden.

This module imports no torch: ``pin_cpu_kernels`` must run before the first ``import torch``.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

SWITCH = "TRAINFLOW_CPU_KERNELS"
PINNED = "avx2"
NATIVE = "native"
# library variable -> value that selects its AVX2 code path
AVX2_PINS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def _is_x86() -> bool:
    return platform.machine().lower() in {"x86_64", "amd64", "i686", "x86"}


def kernel_choice(environ: MutableMapping[str, str] = os.environ) -> str:
    """``avx2`` (the default) or ``native``, from ``TRAINFLOW_CPU_KERNELS``."""
    value = environ.get(SWITCH, PINNED).strip().lower() or PINNED
    if value not in {PINNED, NATIVE}:
        from trainflow.errors import ConfigError

        raise ConfigError(f"{SWITCH}={value!r} is not valid; use {PINNED} (reproducible, default) or {NATIVE}")
    return value


def pin_cpu_kernels(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set the AVX2 pins in ``environ`` unless switched off, not x86, or already set by the user.

    Returns the variables it set. Child processes (torchrun workers, DVC stage commands)
    inherit them. Has no effect on a torch that is already imported, so call it first.
    """
    if kernel_choice(environ) == NATIVE or not _is_x86():
        return {}
    pinned = {}
    for name, value in AVX2_PINS.items():
        if name not in environ:
            environ[name] = value
            pinned[name] = value
    return pinned


RUNTIME_KEYS = ("torch", "python", "cpu_kernels", "cpu_capability", "threads")  # in the order recorded


def stored_runtime_record(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A runtime record read back from a JSON file, in :func:`runtime_record`'s key order.

    Files written with sorted keys lose that order; YAML and Markdown that show the record
    (config.yaml, the model card) must not change with the file it came through.
    """
    return {key: stored[key] for key in RUNTIME_KEYS if key in stored}


def runtime_record(threads: int | None = None) -> dict[str, Any]:
    """What decides the bits of a CPU run besides params and data: recorded beside the outputs.

    Imports torch (call it where torch is loaded anyway). ``threads`` is the configured
    ``train.threads`` (0 = torch's own choice, which depends on the machine).
    """
    import torch

    return {
        "torch": torch.__version__.split("+")[0],
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "cpu_kernels": kernel_choice(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": threads if threads else "torch default",
    }

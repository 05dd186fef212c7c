"""CPU kernel pinning: the same params give the same bits on CPUs with and without AVX-512."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from trainflow.errors import ConfigError
from trainflow.runtime import AVX2_PINS, SWITCH, kernel_choice, pin_cpu_kernels

x86_only = pytest.mark.skipif(platform.machine().lower() not in {"x86_64", "amd64"}, reason="x86 kernels")


@x86_only
def test_pins_every_library_to_avx2_by_default() -> None:
    environ: dict[str, str] = {}
    assert pin_cpu_kernels(environ) == AVX2_PINS
    assert environ == AVX2_PINS


@x86_only
def test_a_variable_the_user_set_is_kept() -> None:
    environ = {"ATEN_CPU_CAPABILITY": "default"}
    pin_cpu_kernels(environ)
    assert environ["ATEN_CPU_CAPABILITY"] == "default"
    assert environ["MKL_CBWR"] == "AVX2"


def test_native_switch_sets_nothing() -> None:
    environ = {SWITCH: "native"}
    assert pin_cpu_kernels(environ) == {}
    assert set(environ) == {SWITCH}


def test_an_unknown_switch_value_names_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=rf"{SWITCH}='fast' is not valid; use avx2 .* or native"):
        kernel_choice({SWITCH: "fast"})


def _capability(extra_env: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in AVX2_PINS and k != SWITCH} | extra_env
    code = (
        "from trainflow.runtime import pin_cpu_kernels; pin_cpu_kernels(); import torch; "
        "print(torch.backends.cpu.get_cpu_capability())"
    )
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


@x86_only
def test_torch_started_after_the_pin_runs_its_avx2_kernels() -> None:
    native = _capability({SWITCH: "native"}).strip()
    if native not in {"AVX2", "AVX512"}:
        pytest.skip(f"this CPU offers {native} kernels only")
    assert _capability({}).strip() == "AVX2"


def test_the_trainflow_command_pins_before_a_stage_imports_torch(tmp_path) -> None:
    """The `trainflow` console script (what dvc.yaml's cmds run) applies the pin itself."""
    env = {k: v for k, v in os.environ.items() if k not in AVX2_PINS and k != SWITCH}
    code = (
        "import os, sys; from trainflow import cli; cli.COMMANDS['config'] = lambda args: "
        "print(os.environ.get('ATEN_CPU_CAPABILITY')); sys.exit(cli.main(['config', 'show']))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    expected = "avx2" if platform.machine().lower() in {"x86_64", "amd64"} else "None"
    assert out.stdout.strip() == expected, out.stderr

"""The train stage as a 2-process DDP job (gloo on CPU) under `dvc repro` and by hand.

The project imports a small plugin (written into it by the fixture): the built-in MLP under the
name ``faulty_mlp``, which fails on rank 1 when ``DDP_TEST_FAULT`` asks for it (``raise`` or
``kill``, on torchrun's first attempt only). So the faulty runs and the clean one share a config
and their outputs can be compared.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
import torch

from tests.fixtures.project import make_project, run
from trainflow.training.launch import processes_with_env

pytestmark = pytest.mark.e2e

MARKER_ENV = "TRAINFLOW_TEST_JOB"
FAULT_AT = 30  # training forward passes of rank 1: in epoch 2 (about 20 steps per epoch)
PLUGIN = f'''"""The built-in MLP, failing on rank 1 when DDP_TEST_FAULT says so (first attempt only)."""

import os
import signal

from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.config import STRICT
from trainflow.models.mlp import MLP, MLPConfig


@dataclass(frozen=True, config=STRICT)
class FaultyMLPConfig(MLPConfig):
    name: str = "faulty_mlp"


@registry.models.register("faulty_mlp", FaultyMLPConfig)
class FaultyMLP(MLP):
    calls = 0

    def forward(self, x):
        first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0"
        if self.training and first_attempt and os.environ.get("RANK") == "1":
            FaultyMLP.calls += 1
            fault = os.environ.get("DDP_TEST_FAULT")
            if FaultyMLP.calls == {FAULT_AT} and fault == "raise":
                raise RuntimeError("injected failure on rank 1")
            if FaultyMLP.calls == {FAULT_AT} and fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(x)
'''
PARAMS = {
    "imports": ["ddp_faults"],
    "model": {"name": "faulty_mlp", "hidden_sizes": [32]},
    "train": {
        "max_epochs": 2,
        "early_stopping": {"patience": 0},
        "distributed": {"nproc_per_node": 2, "timeout_s": 30},
    },
}


def env(project: Path, marker: str, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(project), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, MARKER_ENV: marker, **extra}


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model_state"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The pipeline reproduced once with 2 training processes; its outputs saved aside."""
    folder = tmp_path_factory.mktemp("ddp") / "project"
    make_project(folder, PARAMS)
    (folder / "ddp_faults.py").write_text(PLUGIN)
    marker = uuid.uuid4().hex
    result = run(["dvc", "repro"], folder, **env(folder, marker))
    assert processes_with_env(MARKER_ENV, marker) == []
    shutil.copytree(folder / "models", folder.parent / "reference-models")
    shutil.copy2(folder / "metrics" / "train.json", folder.parent / "reference-train.json")
    return folder, result.stdout + result.stderr


def test_dvc_repro_trains_with_two_processes_and_rank_0_writes(project: tuple[Path, str]) -> None:
    folder, output = project
    assert "train: 2 processes (2 per node x 1 node(s)) under torchrun" in output
    assert output.count("train: best epoch") == 1  # one process reports and writes
    summary = json.loads((folder / "metrics" / "train.json").read_text())
    assert summary["epochs"] == 2
    state = weights(folder / "models" / "best.pt")
    assert state and not any(key.startswith("module.") for key in state)
    eval_metrics = json.loads((folder / "metrics" / "eval.json").read_text())
    assert eval_metrics["test"]["accuracy"] > 0.5  # 2 short epochs of a small MLP; chance is 0.1
    assert (folder / "results" / "manifest.json").is_file()


def test_a_failing_rank_fails_the_stage_with_its_error_and_no_process_left(project: tuple[Path, str]) -> None:
    folder, _ = project
    marker = uuid.uuid4().hex
    result = run(
        ["trainflow", "train", "--no-resume"], folder, check=False, **env(folder, marker, DDP_TEST_FAULT="raise")
    )
    assert result.returncode != 0
    assert "RuntimeError: injected failure on rank 1" in result.stderr  # torchrun's summary, from @record
    assert "error: distributed training failed" in result.stderr
    assert processes_with_env(MARKER_ENV, marker) == []


def test_a_killed_rank_is_restarted_and_the_run_ends_as_if_never_interrupted(project: tuple[Path, str]) -> None:
    folder, _ = project
    marker = uuid.uuid4().hex
    command = ["trainflow", "train", "--no-resume", "train.distributed.max_restarts=1"]
    result = run(command, folder, **env(folder, marker, DDP_TEST_FAULT="kill"))
    assert "resumed from" in result.stdout  # the restarted workers continued from epoch 1's checkpoint
    assert processes_with_env(MARKER_ENV, marker) == []
    reference = folder.parent / "reference-models"
    for name in ("best.pt", "last.pt"):
        got, expected = weights(folder / "models" / name), weights(reference / name)
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[key], expected[key]) for key in got), name
    got_summary = json.loads((folder / "metrics" / "train.json").read_text())
    assert got_summary == json.loads((folder.parent / "reference-train.json").read_text())

"""The package stage and its command: a verified results/ after evaluate, a clear error before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.results.tiny_project import make_project
from tests.test_cli import imported_modules
from trainflow.cli import main
from trainflow.config import experiment_id
from trainflow.paths import EVALUATED_MODEL, EVALUATED_WEIGHTS
from trainflow.results.model_files import weights_bytes
from trainflow.stages import evaluate, package
from trainflow.storage.manifest import read_manifest, verify_manifest

torch.set_num_threads(1)


def test_stage_builds_a_verified_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, paths = make_project(tmp_path / "project")
    evaluate.run(config, paths)
    summary = package.run(config, paths)
    assert summary["results"] == str(paths.results)
    assert sorted(read_manifest(paths.results)["files"]) == summary["files"]
    assert "model_card.md" in summary["files"]
    assert verify_manifest(paths.results) == []
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if line.startswith("package: ")][-1].startswith(f"package: wrote {paths.results}")


def test_cli_package_before_evaluate_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, paths = make_project(tmp_path / "project")
    arguments = ["--root", str(paths.root), "--params", str(paths.params)]
    assert main(["package", *arguments]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "eval.json: not found; run the evaluate stage first" in error
    assert not paths.results.exists()

    assert main(["evaluate", *arguments]) == 0
    assert main(["package", *arguments]) == 0
    assert verify_manifest(paths.results) == []


def test_cli_package_imports_no_torch(tmp_path: Path) -> None:
    config, paths = make_project(tmp_path / "project")
    evaluate.run(config, paths)
    modules = imported_modules("package", cwd=paths.root)
    assert "trainflow.results.package" in modules  # the log is real: it names what was imported
    heavy = sorted(modules & {"torch", "torchmetrics", "tensorboardX", "safetensors.torch", "lightning"})
    assert not heavy, f"trainflow package imports {heavy}"
    assert verify_manifest(paths.results) == []
    # the weights are the evaluate stage's tensors stamped for the package (the bytes the torch
    # writer gives), the runtime record the one evaluate took
    snapshot = torch.load(paths.models / "best.pt", weights_only=True)
    packaged = (paths.results / "model.safetensors").read_bytes()
    assert packaged == weights_bytes(snapshot["model_state"], experiment_id(config))
    assert packaged != (paths.evaluation / EVALUATED_WEIGHTS).read_bytes()  # stamped: metadata added
    runtime = json.loads((paths.evaluation / EVALUATED_MODEL).read_text())["runtime"]
    assert f"| torch | {runtime['torch']} |" in (paths.results / "model_card.md").read_text()


def test_package_refuses_a_damaged_model_summary_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, paths = make_project(tmp_path / "project")
    arguments = ["--root", str(paths.root), "--params", str(paths.params)]
    assert main(["evaluate", *arguments]) == 0
    summary_path = paths.evaluation / EVALUATED_MODEL
    summary = json.loads(summary_path.read_text())
    del summary["parameters"]
    summary_path.write_text(json.dumps(summary))
    capsys.readouterr()
    assert main(["package", *arguments]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and f"{EVALUATED_MODEL}: not a model summary" in error
    assert "run the evaluate stage first" in error
    assert not paths.results.exists()

"""The package stage and its command: a verified results/ after evaluate, a clear error before it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.results.tiny_project import make_project
from trainflow.cli import main
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

"""A model file never decides what gets imported, and a refused model file is one error line.

The config stored in ``models/best.pt`` or a checkpoint is data: ``imports:`` in it is compared
with the current params.yaml, never imported. The plug-in used here touches a marker file when
it is imported, so any import of it shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tests.results.tiny_project import make_project, tiny_params
from trainflow import registry
from trainflow.config import resolve, to_dict
from trainflow.errors import CheckpointError, ConfigError
from trainflow.models.snapshot import load_model_snapshot, save_model_snapshot
from trainflow.paths import ProjectPaths
from trainflow.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from trainflow.training.loaders import InMemoryLoader
from trainflow.training.trainer import Trainer

torch.set_num_threads(1)
TRAINFLOW = Path(sys.executable).parent / "trainflow"


def write_plugin(folder: Path, module: str, model_name: str) -> Path:
    """A plug-in module registering ``model_name`` that creates ``<module>.imported`` when imported."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"{module}.imported"
    (folder / f"{module}.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            from pydantic.dataclasses import dataclass
            from torch import nn

            from trainflow import registry
            from trainflow.config import STRICT, ComponentConfig

            Path({str(marker)!r}).touch()  # the import-time side effect the tests look for


            @dataclass(frozen=True, config=STRICT)
            class LinearConfig(ComponentConfig):
                name: str = {model_name!r}


            @registry.models.register({model_name!r}, LinearConfig)
            def linear(config, in_features, num_outputs, image_shape=None):
                return nn.Linear(in_features, num_outputs)
            """
        )
    )
    return marker


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    """A tiny project with data, encoder and models/best.pt; each test works on a copy."""
    return make_project(tmp_path_factory.mktemp("stored") / "project")[1]


@pytest.fixture
def project(trained: ProjectPaths, tmp_path: Path) -> ProjectPaths:
    import shutil

    shutil.copytree(trained.root, tmp_path / "project")
    return ProjectPaths(tmp_path / "project")


def rewrite_snapshot(path: Path, **config_changes: Any) -> None:
    """Change keys of the config stored in the snapshot at ``path``, keeping everything else."""
    snapshot = torch.load(path, weights_only=True)
    snapshot["config"].update(config_changes)
    torch.save(snapshot, path)


def trainflow(*args: str, cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``trainflow`` command, with the plug-in folder importable."""
    env = {**os.environ, "PYTHONPATH": f"{pythonpath}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([str(TRAINFLOW), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_loading_a_snapshot_imports_nothing_it_names(project: ProjectPaths, tmp_path: Path) -> None:
    marker = write_plugin(tmp_path / "plugins", "stored_only_plugin", "stored_only_linear")
    best = project.models / "best.pt"
    rewrite_snapshot(best, imports=["stored_only_plugin"])
    sys.path.insert(0, str(tmp_path / "plugins"))
    try:
        model, snapshot = load_model_snapshot(best)
    finally:
        sys.path.remove(str(tmp_path / "plugins"))
    assert not marker.exists()
    assert "stored_only_plugin" not in sys.modules
    assert snapshot["config"]["imports"] == ["stored_only_plugin"] and isinstance(model, torch.nn.Module)


def test_evaluate_compares_stored_imports_as_data(project: ProjectPaths, tmp_path: Path) -> None:
    marker = write_plugin(tmp_path / "plugins", "cli_stored_plugin", "cli_stored_linear")
    rewrite_snapshot(project.models / "best.pt", imports=["cli_stored_plugin"])
    result = trainflow("evaluate", cwd=project.root, pythonpath=tmp_path / "plugins")
    line = one_error_line(result)
    assert line.startswith("error: models/best.pt: trained with different settings (imports)")
    assert not marker.exists()


def test_a_plugin_model_needs_the_plugin_listed_in_params(project: ProjectPaths, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    marker = write_plugin(plugins, "needed_plugin", "needed_linear")
    sys.path.insert(0, str(plugins))
    try:
        config = resolve(tiny_params(imports=["needed_plugin"], model={"name": "needed_linear"}))
    finally:
        sys.path.remove(str(plugins))
    marker.unlink()  # imported here only to write a snapshot of a plug-in model
    info = yaml.safe_load((project.prepared / "info.json").read_text())
    from trainflow.data.datasets import DatasetInfo

    model = registry.models.build(config.model, in_features=len(info["feature_columns"]), num_outputs=3)
    save_model_snapshot(project.models / "best.pt", model, config, DatasetInfo.from_dict(info))

    result = trainflow("evaluate", cwd=project.root, pythonpath=plugins)
    line = one_error_line(result)
    assert line.startswith("error: models/best.pt (stored config): model.name: unknown name 'needed_linear'")
    assert line.endswith("this model needs plug-in needed_plugin: list it under `imports:` in params.yaml")
    assert not marker.exists()

    project.params.write_text(yaml.safe_dump(tiny_params(imports=["needed_plugin"], model={"name": "needed_linear"})))
    result = trainflow("evaluate", cwd=project.root, pythonpath=plugins)
    assert result.returncode == 0, result.stderr
    assert marker.exists()  # imported because the current params.yaml lists it


def test_from_checkpoint_imports_nothing_the_checkpoint_names(tmp_path: Path) -> None:
    marker = write_plugin(tmp_path / "plugins", "checkpoint_plugin", "checkpoint_linear")
    config = resolve(tiny_params(train={"max_epochs": 1, "batch_size": 8, "threads": 1}))
    from trainflow.data.datasets import DatasetInfo

    info = DatasetInfo("classification", ("f0", "f1", "f2", "f3"), "label", (0, 1, 2))
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 4, generator=generator), torch.randint(0, 3, (24,), generator=generator)
    loader = InMemoryLoader(x, y, batch_size=8)
    Trainer.from_config(config, info, loader, loader, checkpoint_dir=tmp_path / "ck", progress="off").fit()
    newest = list_checkpoints(tmp_path / "ck")[-1]
    payload = load_checkpoint(newest)
    payload["config"] = {**to_dict(config), "imports": ["checkpoint_plugin"]}
    save_checkpoint(newest, payload)

    sys.path.insert(0, str(tmp_path / "plugins"))
    try:
        restored = Trainer.from_checkpoint(newest, progress="off")
        payload["config"]["model"] = {"name": "checkpoint_linear"}
        save_checkpoint(newest, payload)
        with pytest.raises(ConfigError, match=r"needs plug-in checkpoint_plugin: list it under `imports:`"):
            Trainer.from_checkpoint(newest, progress="off")
    finally:
        sys.path.remove(str(tmp_path / "plugins"))
    assert restored.config is not None and restored.config.imports == ("checkpoint_plugin",)
    assert not marker.exists() and "checkpoint_plugin" not in sys.modules


class _OpensAFile:
    """Unpickling this would call ``open(marker, "w")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_evaluate_reports_a_refused_model_file_in_one_line(project: ProjectPaths, tmp_path: Path) -> None:
    marker = tmp_path / "opened"
    best = project.models / "best.pt"
    snapshot = torch.load(best, weights_only=True)
    snapshot["epoch"] = _OpensAFile(marker)
    torch.save(snapshot, best)
    with pytest.raises(CheckpointError):
        load_model_snapshot(best)

    line = one_error_line(trainflow("evaluate", cwd=project.root, pythonpath=tmp_path))
    assert line == (
        "error: models/best.pt: refused to load this model snapshot: it names the global io.open, "
        "which is neither a tensor nor plain data; nothing in it was run"
    )
    assert not marker.exists()

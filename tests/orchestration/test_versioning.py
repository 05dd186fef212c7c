"""DVC versioning tasks: the accepted model's metrics (git revision or file), remotes required."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.versioning import RemoteNotConfigured, accepted_metrics, dvc_pull, dvc_push, record_accepted
from tests.orchestration.projects import commit, init_repo, run

EVALUATE = """
stages:
  evaluate:
    cmd: bash evaluate.sh
    deps: [score, evaluate.sh]
    metrics:
      - metrics/eval.json:
          cache: false
"""
SCRIPT = """mkdir -p metrics
echo "{\\"test\\": {\\"accuracy\\": $(cat score)}}" > metrics/eval.json
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A DVC project whose metrics/eval.json reports the number in ``score``; no remote."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "dvc.yaml").write_text(EVALUATE)
    (root / "score").write_text("0.9\n")
    (root / "evaluate.sh").write_text(SCRIPT)
    init_repo(root)
    return root


def test_git_baseline_is_the_committed_metrics(project: Path) -> None:
    assert accepted_metrics.fn(root=str(project), baseline="HEAD") == {}  # nothing committed yet
    run(["dvc", "repro"], project)
    commit(project, "accept 0.9")
    (project / "score").write_text("0.8\n")
    run(["dvc", "repro"], project)
    assert json.loads((project / "metrics" / "eval.json").read_text()) == {"test": {"accuracy": 0.8}}
    assert accepted_metrics.fn(root=str(project), baseline="HEAD") == {"test.accuracy": 0.9}


def test_file_baseline_is_read_and_recorded(project: Path) -> None:
    assert accepted_metrics.fn(root=str(project), baseline="accepted.json") == {}
    record_accepted(str(project), "accepted.json", {"test": {"accuracy": 0.7, "name": "x"}})
    assert accepted_metrics.fn(root=str(project), baseline="accepted.json") == {"test.accuracy": 0.7}
    record_accepted(str(project), "HEAD", {"test": {"accuracy": 0.1}})  # a git baseline is not a file
    assert not (project / "HEAD").exists()


def test_pull_and_push_need_a_default_remote(project: Path) -> None:
    for task in (dvc_pull, dvc_push):
        with pytest.raises(RemoteNotConfigured, match="dvc remote add -d"):
            task.fn(root=str(project), require_remote=True)

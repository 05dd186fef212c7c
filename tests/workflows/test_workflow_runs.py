"""The retrain and PR-report workflows, run step by step by the harness against local remotes.

One project (a copy of this one with tiny params) is pushed to a bare repository standing in
for GitHub; the DVC remote is a local folder given as ``vars.DVC_REMOTE_URL``. The retrain
workflow first accepts a model there (a commit on origin, the outputs in the remote); a much
worse model is then rejected (the job fails with the acceptance command's one line, origin and
the remote unchanged); a PR's report compares its pipeline with the accepted commit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.acceptance import judge
from tasks.params import apply_overrides
from tests.orchestration.projects import ROOT, env, pipeline_project, run
from tests.workflows.harness import Job, run_job

WORKFLOWS = ROOT / ".github" / "workflows"
#: The step that pip-installs the project: here the venv on PATH already has it.
NO_INSTALL = {"install": None}


def git(cwd: Path, *args: str) -> str:
    return run(["git", *args], cwd).strip()


def clone(origin: Path, path: Path) -> Path:
    run(["git", "clone", "-q", str(origin), str(path)], origin.parent)
    git(path, "config", "user.email", "tests@trainflow.invalid")
    git(path, "config", "user.name", "trainflow tests")
    return path


def remote_files(remote: Path) -> list[str]:
    return sorted(str(path.relative_to(remote)) for path in remote.rglob("*") if path.is_file())


def push_event(workspace: Path) -> dict[str, Any]:
    sha = git(workspace, "rev-parse", "HEAD")
    return {"event_name": "push", "sha": sha, "ref": "refs/heads/main", "ref_name": "main", "event": {}}


def retrain(workspace: Path, remote: Path, temp: Path) -> Job:
    return run_job(
        WORKFLOWS / "retrain.yml",
        "retrain",
        workspace,
        temp,
        push_event(workspace),
        vars_={"DVC_REMOTE_URL": str(remote)},
        base_env=env(),
        replace=NO_INSTALL,
    )


@pytest.fixture(scope="module")
def accepted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """origin (bare) with the project, a first retrain accepted and committed, its DVC remote."""
    base = tmp_path_factory.mktemp("retrain")
    project = pipeline_project(base / "project")
    origin = base / "origin.git"
    run(["git", "clone", "-q", "--bare", str(project), str(origin)], base)
    remote = base / "dvc-remote"
    before = git(origin, "rev-parse", "main")
    workspace = clone(origin, base / "run1")
    job = retrain(workspace, remote, base / "runner1")
    sha = git(origin, "rev-parse", "main")
    return {"base": base, "origin": origin, "remote": remote, "before": before, "job": job, "sha": sha}


def test_an_accepted_retrain_pushes_the_outputs_then_commits_to_origin(accepted: dict[str, Any]) -> None:
    job, origin, remote = accepted["job"], accepted["origin"], accepted["remote"]
    assert job.succeeded, job.log
    assert "no accepted model to compare with, accepted as the first" in job.step("accept").output
    ran = [step.id for step in job.steps if step.kind == "run"]
    assert ran.index("pull") < ran.index("repro") < ran.index("accept") < ran.index("push") < ran.index("commit")

    head = git(origin, "rev-parse", "main")
    assert head != accepted["before"]
    assert git(origin, "log", "-1", "--format=%s", "main").startswith("retrain: dvc.lock and metrics for ")
    assert set(git(origin, "show", "--name-only", "--format=", "main").splitlines()) >= {
        "dvc.lock",
        "metrics/eval.json",
        "plots/history.csv",
    }
    # Every cached output the commit's dvc.lock names is in the remote (pushed before the commit).
    lock = yaml.safe_load(git(origin, "show", "main:dvc.lock"))
    hashes = {
        out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
        if not out["path"].startswith(("metrics", "plots", "models/checkpoints"))
    }
    stored = {name.replace("/", "").removeprefix("filesmd5") for name in remote_files(remote)}
    assert hashes and hashes <= stored, (hashes - stored, sorted(stored)[:5])
    assert job.summary.startswith("## Retrain: accepted")
    assert "## Metrics: this run vs" in job.summary and "test.accuracy" in job.summary


def test_a_much_worse_model_fails_the_job_and_leaves_origin_and_the_remote_as_they_were(
    accepted: dict[str, Any],
) -> None:
    assert accepted["job"].succeeded, accepted["job"].log
    base, origin, remote = accepted["base"], accepted["origin"], accepted["remote"]
    workspace = clone(origin, base / "run2")
    # The push that triggers the workflow: far fewer epochs at a tiny learning rate.
    apply_overrides(workspace / "params.yaml", {"train.max_epochs": 1, "train.optimizer.lr": 1e-5})
    git(workspace, "commit", "-q", "-am", "params: one epoch at lr 1e-5")
    git(workspace, "push", "-q", "origin", "HEAD:main")
    origin_before = git(origin, "for-each-ref")
    remote_before = remote_files(remote)

    job = retrain(workspace, remote, base / "runner2")

    assert not job.succeeded
    accept = job.step("accept")
    assert accept.outcome == "failure"
    lines = [line for line in accept.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.fullmatch(
        r"error: test\.accuracy dropped by \S+ \(\S+ -> \S+, -\S+\), more than retrain\.max_drop=0 allows; "
        r"the new model was not pushed or uploaded",
        lines[0],
    ), accept.output
    old, new = (float(value) for value in re.findall(r"\((\S+) -> (\S+),", lines[0])[0])
    assert lines[0] == "error: " + judge("test.accuracy", old, new, "max", 0.0).message
    assert job.step("push").outcome == "skipped" and job.step("commit").outcome == "skipped"
    assert git(origin, "for-each-ref") == origin_before
    assert remote_files(remote) == remote_before
    assert git(workspace, "status", "--porcelain", "--", "dvc.lock") != ""  # the rejected run stays local
    assert job.summary.startswith("## Retrain: rejected")
    assert "## Metrics: this run vs" in job.summary  # the diff is still reported


def pr_event(workspace: Path, base_sha: str, fork: bool) -> dict[str, Any]:
    head = git(workspace, "rev-parse", "HEAD")
    pull_request = {"number": 7, "base": {"sha": base_sha}, "head": {"sha": head, "repo": {"fork": fork}}}
    return {
        "event_name": "pull_request",
        "sha": head,
        "ref": "refs/pull/7/merge",
        "ref_name": "7/merge",
        "base_ref": "main",
        "head_ref": "more-epochs",
        "event": {"pull_request": pull_request},
    }


def test_a_pull_request_from_a_fork_gets_the_report_in_the_summary_without_secrets(accepted: dict[str, Any]) -> None:
    assert accepted["job"].succeeded, accepted["job"].log
    base, origin = accepted["base"], accepted["origin"]
    base_sha = accepted["sha"]
    workspace = clone(origin, base / "pr")
    git(workspace, "checkout", "-q", "-b", "more-epochs", base_sha)
    apply_overrides(workspace / "params.yaml", {"train.max_epochs": 3})
    git(workspace, "commit", "-q", "-am", "params: three epochs")

    temp = base / "runner-pr"
    job = run_job(
        WORKFLOWS / "pr-report.yml",
        "report",
        workspace,
        temp,
        pr_event(workspace, base_sha, fork=True),
        base_env={key: value for key, value in env().items() if not key.startswith("AWS_")},
        replace=NO_INSTALL,
    )

    assert job.succeeded, job.log
    assert job.step("remote").outcome == "skipped" and job.step("pull").outcome == "skipped"
    assert job.step("comment").outcome == "skipped"  # a fork's token cannot comment
    assert job.step("artifact").inputs == {"name": "pr-report", "path": str(temp / "pr-report")}
    summary = job.summary
    assert summary.startswith("<!-- trainflow-pr-report -->\n## Pipeline report: this PR vs ")
    assert re.search(r"\| metrics/eval\.json\s+\| test\.accuracy\s+\|", summary), summary
    assert re.search(r"\| params\.yaml\s+\| train\.max_epochs\s+\| 2\s+\| 3\s+\|", summary), summary
    for name in ("learning_curve_head.png", "learning_curve_base.png", "confusion_test_head.png"):
        assert f"]({name})" in summary
        assert (temp / "pr-report" / name).read_bytes().startswith(b"\x89PNG")
    assert (temp / "pr-report" / "confusion_test_base.png").is_file()
    assert (temp / "pr-report" / "report.md").read_text() == summary


def test_the_comment_of_a_same_repository_pr_reads_the_report_file() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "pr-report.yml").read_text())
    steps = {step.get("id"): step for step in workflow["jobs"]["report"]["steps"]}
    comment = steps["comment"]
    assert comment["uses"].startswith("actions/github-script@")
    assert "updateComment" in comment["with"]["script"] and "createComment" in comment["with"]["script"]
    assert comment["env"]["BODY_FILE"] == "${{ steps.summary.outputs.body }}"
    assert os.path.basename("comment.md") in steps["summary"]["run"]

"""The GitHub workflows validate against the workflow schema and do what the project promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def check_jsonschema() -> str:
    beside = Path(sys.executable).with_name("check-jsonschema")
    found = str(beside) if beside.is_file() else shutil.which("check-jsonschema")
    if found is None:
        pytest.fail("check-jsonschema not found: install the test extras (pip install -e '.[test]')")
    return found


def validate(*files: Path) -> subprocess.CompletedProcess[str]:
    command = [check_jsonschema(), "--builtin-schema", "vendor.github-workflows", *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True)


def load(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflows_validate_against_the_schema() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {path.name for path in files} >= {"tests.yml", "retrain.yml"}
    result = validate(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: broken\non: [push]\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    assert validate(broken).returncode != 0


def test_tests_run_make_test_on_pull_requests() -> None:
    workflow = load("tests.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in triggers
    assert any(step.get("run", "").strip() == "make test" for step in steps(workflow))


def test_retrain_on_params_or_data_changes_and_nightly() -> None:
    workflow = load("retrain.yml")
    triggers = workflow[True]
    assert {"params.yaml", "data/**"} <= set(triggers["push"]["paths"])


def test_the_nightly_schedule_is_the_same_in_the_workflow_prefect_yaml_and_make_serve() -> None:
    from flows.serve import NIGHTLY_CRON, TIMEZONE

    prefect = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    crons = {(schedule["cron"], schedule["timezone"]) for d in prefect["deployments"] for schedule in d["schedules"]}
    assert crons == {(NIGHTLY_CRON, TIMEZONE)}
    # GitHub's cron is always UTC.
    assert TIMEZONE == "UTC"
    assert [entry["cron"] for entry in load("retrain.yml")[True]["schedule"]] == [NIGHTLY_CRON]


def test_retrain_accepts_before_it_pushes_and_commits() -> None:
    ordered = {step.get("id"): step for step in steps(load("retrain.yml"))}
    ids = list(ordered)
    assert ids.index("pull") < ids.index("repro") < ids.index("accept") < ids.index("push") < ids.index("commit")
    assert "python -m tasks.acceptance --baseline HEAD" in ordered["accept"]["run"]
    assert "steps.accept.outputs.accepted == 'true'" in ordered["push"]["if"]
    assert "steps.push.outcome == 'success'" in ordered["commit"]["if"]
    script = "\n".join(step.get("run", "") for step in ordered.values())
    assert "dvc metrics diff --md HEAD" in script and '>> "$GITHUB_STEP_SUMMARY"' in script


def test_pr_report_runs_on_changes_to_params_data_or_code_and_needs_no_secret() -> None:
    workflow = load("pr-report.yml")
    assert {"params.yaml", "data/**", "src/**", "dvc.yaml"} <= set(workflow[True]["pull_request"]["paths"])
    by_id = {step.get("id"): step for step in steps(workflow)}
    assert "env.AWS_ACCESS_KEY_ID != ''" in by_id["remote"]["if"]  # no remote (no pull) without secrets
    assert by_id["comment"]["if"] == "${{ !github.event.pull_request.head.repo.fork }}"
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}

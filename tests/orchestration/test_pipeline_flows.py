"""The flows on the real pipeline, in temporary git + DVC copies of the project, reporting to a
real Prefect server: uploads to moto's S3, reruns that DVC skips, overrides, timeouts, retrain
rejection."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from flows.retrain import RetrainRejected, retrain
from flows.training_pipeline import training_pipeline
from tests.fixtures.s3 import s3_client
from tests.orchestration.projects import pipeline_project
from tests.orchestration.test_process import wait_gone
from trainflow.config import load_config
from trainflow.errors import ConfigError
from trainflow.storage.manifest import verify_manifest
from trainflow.training.checkpoint import parse_name

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]

#: The default pipeline's stages in the order the flow runs them (tasks.dvc reads them from dvc.yaml).
STAGES = ("prepare", "fit_encoder", "train", "evaluate", "package")


def ran(result: dict[str, Any]) -> dict[str, bool]:
    return {stage["stage"]: stage["ran"] for stage in result["stages"]}


def processes_in(root: Path) -> list[int]:
    """PIDs of processes working in ``root`` (their cwd is in it, or their command line names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(root)) or str(root) in cmdline:
            pids.append(int(entry.name))
    return pids


def flow_run_logs(flow_run_id: Any) -> list[str]:
    """The messages the flow run and its task runs logged to the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from tests.fixtures.prefect import drain_prefect_workers

    drain_prefect_workers()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def download(endpoint: str, bucket: str, prefix: str, folder: Path) -> dict[str, str]:
    """Every object under ``prefix`` into ``folder``; returns {key: ETag}."""
    client = s3_client(endpoint)
    etags = {}
    for item in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        relative = item["Key"][len(prefix) :]
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, item["Key"], str(folder / relative))
        etags[item["Key"]] = item["ETag"]
    return etags


def test_upload_to_s3_then_a_rerun_does_and_uploads_nothing(tmp_path: Path, s3_server: str, s3_bucket: str) -> None:
    root = pipeline_project(tmp_path / "project", {"upload.target": f"s3://{s3_bucket}/runs"})
    first = training_pipeline(root=str(root))
    assert ran(first) == dict.fromkeys(STAGES, True)
    report = first["upload"]
    experiment = first["experiment_id"]
    assert report["location"] == f"s3://{s3_bucket}/runs/{experiment}"
    assert "manifest.json" in report["uploaded"] and report["skipped"] == []
    assert first["metrics"] == json.loads((root / "metrics" / "eval.json").read_text())

    copy = tmp_path / "downloaded"
    etags = download(s3_server, s3_bucket, f"runs/{experiment}/", copy)
    assert verify_manifest(copy) == []
    assert len(etags) == len(report["uploaded"])

    second = training_pipeline(root=str(root))
    assert ran(second) == dict.fromkeys(STAGES, False)  # DVC: nothing changed
    assert second["upload"]["uploaded"] == []
    assert sorted(second["upload"]["skipped"]) == sorted(report["uploaded"])
    assert download(s3_server, s3_bucket, f"runs/{experiment}/", tmp_path / "again") == etags


def test_a_bad_override_fails_before_any_stage(tmp_path: Path) -> None:
    root = pipeline_project(tmp_path / "project")
    before = (root / "params.yaml").read_bytes()
    with pytest.raises(ConfigError, match=r"train\.optimizr"):
        training_pipeline(root=str(root), overrides={"train.optimizr.lr": 0.1})
    assert (root / "params.yaml").read_bytes() == before
    assert not (root / "dvc.lock").exists()
    assert not (root / "data" / "prepared").exists()


def test_train_timeout_kills_the_stage_then_a_rerun_resumes_with_dvc_skipping_the_rest(tmp_path: Path) -> None:
    root = pipeline_project(tmp_path / "project")
    # Far more epochs than fit in the timeout, on any machine.
    long_run = {"train.max_epochs": 100000, "train.early_stopping.patience": 0}
    state = training_pipeline(
        root=str(root), overrides=long_run, upload=False, timeouts={"train": 20}, retries=0, return_state=True
    )
    assert state.is_failed()
    assert "timeout" in str(state.result(raise_on_failure=False))
    assert wait_gone(processes_in(root)) == []  # dvc, trainflow train and any child: all gone
    positions = [parse_name(path.name) for path in (root / "models" / "checkpoints").iterdir()]
    done = max(position[0] for position in positions if position is not None)
    assert 0 < done < 100000

    state = training_pipeline(root=str(root), overrides={"train.max_epochs": done + 2}, upload=False, return_state=True)
    result = state.result()
    assert ran(result) == {"prepare": False, "fit_encoder": False, "train": True, "evaluate": True, "package": True}
    assert result["params_changed"] == {"train.max_epochs": [100000, done + 2]}
    assert load_config(root / "params.yaml").train.max_epochs == done + 2
    assert json.loads((root / "metrics" / "train.json").read_text())["epochs"] == done + 2
    assert any("train: resumed from" in line for line in flow_run_logs(state.state_details.flow_run_id))


def test_retrain_rejects_a_worse_model_and_uploads_nothing(tmp_path: Path) -> None:
    root = pipeline_project(tmp_path / "project")
    (root / "accepted.json").write_text(json.dumps({"test": {"accuracy": 1.5}}))
    state = retrain(root=str(root), baseline="accepted.json", pull=False, push=False, return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, RetrainRejected)
    new = json.loads((root / "metrics" / "eval.json").read_text())["test"]["accuracy"]
    assert f"test.accuracy dropped by {1.5 - new:.6g} (1.5 -> {new:.6g}" in str(error)
    assert not (root / "uploads").exists()
    assert json.loads((root / "accepted.json").read_text()) == {"test": {"accuracy": 1.5}}

    accepted = retrain(
        root=str(root), baseline="accepted.json", pull=False, push=False, overrides={"retrain.max_drop": 1}
    )
    assert accepted["verdict"]["accepted"] is True
    assert ran(accepted) == dict.fromkeys(STAGES, False)  # retrain.* params change no stage
    assert (root / "uploads").is_dir()
    assert json.loads((root / "accepted.json").read_text()) == json.loads((root / "metrics" / "eval.json").read_text())

"""The upload task against moto's S3 server: retried when the endpoint is down, then a clear
failure; once the endpoint is back, a re-run completes and the package verifies."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from tasks.params import apply_overrides
from tasks.stages import upload
from tests.fixtures.s3 import SECRET_ACCESS_KEY, MotoProcess, s3_client, write_sample_package
from tests.orchestration.projects import ROOT
from tests.orchestration.test_stage_tasks import task_run_states
from trainflow.errors import StorageError
from trainflow.storage.manifest import verify_manifest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]
BUCKET = "trainflow-results"


@flow(name="upload-under-test")
def upload_once(root: str) -> dict[str, Any]:
    return upload.with_options(retries=2, retry_delay_seconds=0)(root=root)


def test_upload_retries_fails_clearly_and_a_rerun_completes(tmp_path: Path, moto_process: MotoProcess) -> None:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    apply_overrides(root / "params.yaml", {"upload.target": f"s3://{BUCKET}/runs"})
    write_sample_package(root)
    results_before = {path: path.read_bytes() for path in (root / "results").rglob("*") if path.is_file()}

    moto_process.stop()
    state = upload_once(str(root), return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, StorageError)
    assert "127.0.0.1" in str(error) or BUCKET in str(error)
    assert SECRET_ACCESS_KEY not in str(error)
    assert task_run_states(state.state_details.flow_run_id).count("Retrying") == 2  # three attempts
    assert {path: path.read_bytes() for path in results_before} == results_before  # local results untouched

    moto_process.start()
    s3_client(moto_process.endpoint).create_bucket(Bucket=BUCKET)
    report = upload_once(str(root))
    assert "manifest.json" in report["uploaded"]
    prefix = report["location"].removeprefix(f"s3://{BUCKET}/")
    client = s3_client(moto_process.endpoint)
    copy = tmp_path / "downloaded"
    for item in client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")["Contents"]:
        target = copy / item["Key"][len(prefix) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(BUCKET, item["Key"], str(target))
    assert verify_manifest(copy) == []
    assert upload_once(str(root))["uploaded"] == []

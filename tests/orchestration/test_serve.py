"""``make serve`` (``python -m flows.serve``): the retrain flow served on the nightly schedule."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from flows.serve import DEPLOYMENT_NAME, NIGHTLY_CRON, TIMEZONE
from tests.fixtures.prefect import prefect_env
from tests.orchestration.projects import env
from trainflow.training.supervisor import Supervised

pytestmark = pytest.mark.e2e


def test_serve_registers_the_nightly_schedule(tmp_path: Path, prefect_api: str) -> None:
    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        process = Supervised(
            [sys.executable, "-m", "flows.serve", "--root", str(tmp_path), "--no-remote"],
            env={**env(), **prefect_env(prefect_api, tmp_path / "home")},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deployment = None
        with get_client(sync_client=True) as client:
            while deployment is None:
                assert process.poll() is None, log.read_text()
                try:
                    deployment = client.read_deployment_by_name(f"retrain/{DEPLOYMENT_NAME}")
                except ObjectNotFound:
                    time.sleep(0.5)
        assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [(NIGHTLY_CRON, TIMEZONE)]
        assert deployment.parameters == {"root": str(tmp_path), "baseline": "HEAD", "require_remote": False}
    finally:
        process.stop(grace_s=10.0)

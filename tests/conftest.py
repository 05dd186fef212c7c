"""Shared fixtures: real servers (moto S3, Prefect) and temporary git+DVC projects."""

from __future__ import annotations

import os

import torch

pytest_plugins = ["tests.fixtures.s3", "tests.fixtures.prefect", "tests.fixtures.project"]

# Tests share two cores with everything else on the machine; one thread each keeps them steady.
torch.set_num_threads(1)
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

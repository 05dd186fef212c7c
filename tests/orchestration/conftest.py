"""Orchestration tests leave no warm DVC process behind (flows stop theirs; direct task calls do not)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tasks.dvc_runner import close_runners


@pytest.fixture(autouse=True)
def _stop_dvc_runners() -> Iterator[None]:
    yield
    close_runners()

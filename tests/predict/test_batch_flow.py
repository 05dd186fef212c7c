"""The batch_predict flow on a real Prefect server: chunked scoring, same bits as one pass, a summary artifact."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from flows.batch_predict import batch_predict
from tests.predict.test_sources import assert_same_predictions, packaged_project, test_split

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_api")]


def test_batch_predict_scores_in_chunks_with_the_evaluate_bits(tmp_path: Path) -> None:
    _, paths = packaged_project(tmp_path / "project", "names")
    rows = test_split(paths)
    big = pd.concat([rows] * 4, ignore_index=True)
    big.to_parquet(paths.root / "new.parquet")
    summary = batch_predict(
        input="new.parquet", source="results", output="out/predictions.parquet", root=str(paths.root), chunk_rows=8
    )
    assert summary["rows"] == len(big) and summary["chunks"] == -(-len(big) // 8)
    written = pd.read_parquet(paths.root / "out" / "predictions.parquet")
    assert list(written["row"]) == list(range(len(big)))
    for copy in range(4):  # every copy of the test split scores as the evaluate stage did
        assert_same_predictions(written.iloc[copy * len(rows) : (copy + 1) * len(rows)], paths)

    from prefect.client.orchestration import get_client

    async def server_view() -> tuple[list[str], str]:
        async with get_client() as client:
            runs = await client.read_flow_runs()
            artifact = await client.read_latest_artifacts()
            return [run.state.type.value for run in runs if run.name and run.state], str(artifact)

    states, artifacts = asyncio.run(server_view())
    assert "COMPLETED" in states
    assert "batch-predictions" in artifacts


def test_batch_predict_fails_on_a_wrong_schema_input(tmp_path: Path) -> None:
    _, paths = packaged_project(tmp_path / "project", "names")
    test_split(paths).drop(columns=["f1"]).to_csv(paths.root / "bad.csv", index=False)
    with pytest.raises(Exception, match=r"missing column\(s\) f1"):
        batch_predict(input="bad.csv", source="results", output="bad.parquet", root=str(paths.root))
    assert not (paths.root / "bad.parquet").exists()

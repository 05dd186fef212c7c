"""The ``batch_predict`` flow: score a CSV or parquet file with a trained model, in bounded memory.

1. load the model from ``source`` (``models/best.pt``, a result package folder, or an
   uploaded package ``file://…/<experiment-id>/`` / ``s3://bucket/prefix/<experiment-id>/``,
   verified against its manifest first);
2. read ``input`` ``chunk_rows`` rows at a time (a whole number of batches), validate each
   chunk with the training schema, score it and append it to ``output`` (parquet or CSV by
   suffix), so memory holds one chunk whatever the input's size;
3. publish a small summary (rows, chunks, output, experiment, metrics with ``score``) as a
   Prefect artifact.

The work is :func:`trainflow.score_files.score_file`, the same code as ``trainflow predict``,
so the flow's output is bit-identical to the command's. Paths are relative to ``root``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from trainflow.predict import DEFAULT_SOURCE, URL_SCHEMES
from trainflow.score_files import CHUNK_ROWS


def _local(root: str, path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else Path(root) / path


@task(name="score-file", retries=0)
def score(input_path: str, source: str, output: str, chunk_rows: int, score_labels: bool) -> dict[str, Any]:
    """Load the model and score the file chunk by chunk; returns a summary (plain values only)."""
    import torch

    from trainflow.predict import load_model
    from trainflow.score_files import score_file

    predictor = load_model(source)
    if predictor.threads:
        torch.set_num_threads(predictor.threads)
    report = score_file(predictor, Path(input_path), Path(output), score=score_labels, rows=chunk_rows)
    return {
        "rows": report.rows,
        "chunks": report.chunks,
        "output": report.output,
        "experiment_id": predictor.experiment_id,
        "source": predictor.source,
        "metrics": report.metrics,
    }


@flow(name="batch_predict")
def batch_predict(
    input: str,
    source: str = DEFAULT_SOURCE,
    output: str = "predictions.parquet",
    root: str = ".",
    chunk_rows: int = CHUNK_ROWS,
    score_labels: bool = False,
) -> dict[str, Any]:
    """Score ``input`` with the model at ``source`` into ``output``.

    Args:
        input: CSV or parquet with the training features (the label may be present).
        source: ``models/best.pt``, a result package folder, or an uploaded package URL.
        output: ``.parquet`` or ``.csv`` file for ``row``, ``prediction`` and ``prob_<class>``.
        root: the folder relative paths are taken from (the project root).
        chunk_rows: rows read and scored at a time (rounded up to whole batches): bounds memory.
        score_labels: also check the label column and report metrics (``trainflow predict --score``).
    """
    logger = get_run_logger()
    model = source if source.startswith(URL_SCHEMES) else str(_local(root, source))
    summary = score(str(_local(root, input)), model, str(_local(root, output)), chunk_rows, score_labels)
    logger.info("batch_predict: %d rows in %d chunk(s) -> %s", summary["rows"], summary["chunks"], summary["output"])
    lines = [
        "# Batch predictions",
        "",
        f"- rows: {summary['rows']} in {summary['chunks']} chunk(s)",
        f"- output: `{summary['output']}`",
        f"- model: experiment `{summary['experiment_id']}` from `{summary['source']}`",
    ]
    lines += [f"- {name}: {value}" for name, value in summary["metrics"].items()]
    create_markdown_artifact(markdown="\n".join(lines) + "\n", key="batch-predictions", description="batch_predict")
    return summary

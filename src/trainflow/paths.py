"""Where each stage reads and writes, relative to the project root.

These are the paths dvc.yaml declares; a stage never opens a file outside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProjectPaths:
    """The pipeline's files under one project root."""

    root: Path = Path(".")

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def prepared(self) -> Path:
        """train.parquet, val.parquet, test.parquet, info.json, report.json."""
        return self.root / "data" / "prepared"

    @property
    def encoders(self) -> Path:
        """encoder.json: the encoder fitted on the train split."""
        return self.root / "data" / "encoders"

    @property
    def models(self) -> Path:
        """best.pt, last.pt, config.yaml; checkpoints/ holds the resumable training state."""
        return self.root / "models"

    @property
    def checkpoints(self) -> Path:
        return self.models / "checkpoints"

    @property
    def runs(self) -> Path:
        """TensorBoard event files."""
        return self.root / "runs"

    @property
    def metrics(self) -> Path:
        """train.json and eval.json: DVC metrics."""
        return self.root / "metrics"

    @property
    def plots(self) -> Path:
        """CSV data for DVC plots: history.csv, confusion_{val,test}.csv."""
        return self.root / "plots"

    @property
    def evaluation(self) -> Path:
        """predictions_{val,test}.parquet from the evaluate stage."""
        return self.root / "evaluation"

    @property
    def results(self) -> Path:
        """The result package, with manifest.json."""
        return self.root / "results"

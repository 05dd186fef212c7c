"""Where each stage reads and writes, relative to the project root.

These are the paths dvc.yaml declares; a stage never opens a file outside them. The file
names inside those folders are the constants below, so a name changes in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# models/ (train stage)
BEST_MODEL = "best.pt"  # the model snapshot of the best epoch
LAST_MODEL = "last.pt"  # the model snapshot of the last epoch
RESOLVED_CONFIG = "config.yaml"  # the resolved config with its experiment id (also in results/)
# metrics/ (DVC metrics)
TRAIN_METRICS_FILE = "train.json"
EVAL_FILE = "eval.json"
# plots/ (DVC plots)
HISTORY_FILE = "history.csv"  # one row per epoch
EVAL_PLOTS = "eval"  # the folder in plots/ the evaluate stage owns
# evaluation/ (evaluate stage), read by the package stage
PER_CLASS_FILE = "per_class.json"  # classification: per-class report and confusion matrices
EVALUATED_WEIGHTS = "model.safetensors"  # the evaluated snapshot's weights, as packaged
EVALUATED_MODEL = "model_summary.json"  # its data set info, epoch, parameter count, runtime
# results/ (the result package)
PACKAGE_METRICS_FILE = "metrics.json"
WEIGHTS_FILE = "model.safetensors"
MODEL_FILE = "model.json"
PACKAGE_ENCODER_FILE = "encoder.json"
INPUT_SCHEMA_FILE = "input_schema.json"
MODEL_CARD_FILE = "model_card.md"
PER_CLASS_TABLE = "per_class.md"
LEARNING_CURVE_PNG = "learning_curve.png"
PREDICTED_VS_ACTUAL_PNG = "predicted_vs_actual.png"
RESIDUALS_PNG = "residuals.png"


def predictions_file(split: str) -> str:
    """The predictions table of ``split`` in evaluation/ (and in the result package)."""
    return f"predictions_{split}.parquet"


def forecasts_file(span: str) -> str:
    """The forecasts table of ``span`` of a forecasting run in evaluation/ (and in the package)."""
    return f"forecasts_{span}.parquet"


def confusion_png(split: str) -> str:
    """The confusion matrix picture of ``split`` in the result package."""
    return f"confusion_{split}.png"


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

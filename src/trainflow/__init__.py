"""trainflow: reproducible PyTorch training pipelines run by DVC, Prefect or CI."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Trainer", "__version__", "load_model"]


def __getattr__(name: str):  # lazy: `import trainflow` stays cheap for the CLI and config
    if name == "Trainer":
        from trainflow.training.trainer import Trainer

        return Trainer
    if name == "load_model":  # trainflow.load_model(SOURCE) -> a predictor (see trainflow.predict)
        from trainflow.predict import load_model

        return load_model
    raise AttributeError(name)

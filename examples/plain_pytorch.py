"""Plain PyTorch objects, trained by trainflow's Trainer: no base class, no config file.

The model, the loaders, the optimizer and the loss are what any PyTorch script has; the Trainer
adds the loop, validation, checkpoints (resumed on the next run), early stopping and an
end-save of the final model (``final/model.pt``, a model snapshot: its ``model_state`` loads
into the same ``nn.Sequential``) with its validation and test results. A loss that is not
``criterion(model(x), y)`` goes in as ``problem=`` (see trainflow.problems).

    python examples/plain_pytorch.py --epochs 10 --out runs/example

Run it twice: the second run finds the finished checkpoint and says there is nothing to do;
raise --epochs and it continues where it stopped.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from trainflow import Trainer
from trainflow.training.callbacks import EarlyStopping, LRMonitor
from trainflow.training.loggers import CSVLogger

DIGITS = Path(__file__).resolve().parents[1] / "data" / "raw" / "digits.csv.gz"


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 8x8 digits: 64 pixel values (0-16) per row, then the label."""
    with gzip.open(DIGITS, "rt") as file:
        table = np.loadtxt(file, delimiter=",", skiprows=1, dtype=np.float32)
    return torch.from_numpy(table[:, :-1] / 16.0), torch.from_numpy(table[:, -1].astype(np.int64))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/example"))
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    x, y = load_digits()
    order = torch.randperm(len(y))
    train, val, test = order[:1200], order[1200:1500], order[1500:]

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    train_loader = DataLoader(TensorDataset(x[train], y[train]), batch_size=32, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[val], y[val]), batch_size=256)
    test_loader = DataLoader(TensorDataset(x[test], y[test]), batch_size=256)

    trainer = Trainer(
        model,
        train_loader,
        val_loader,
        test_loader,
        optimizer,
        nn.CrossEntropyLoss(),
        scheduler=scheduler,
        metrics={"accuracy": MulticlassAccuracy(num_classes=10, average="micro")},
        monitor="val/accuracy",  # the best epoch, for the checkpoints kept
        mode="max",
        callbacks=[EarlyStopping("val/loss", patience=3), LRMonitor()],
        loggers=[CSVLogger(args.out / "history.csv")],
        checkpoint_dir=args.out / "checkpoints",  # a checkpoint per epoch; the last two and the best kept
        end_save_dir=args.out / "final",  # final weights + validation and test results
    )
    trainer.fit(num_epochs=args.epochs, resume=True)
    results = trainer.test_results or {}
    if results:
        print(f"test accuracy {results['test/accuracy']:.4f} (best val/accuracy at epoch {trainer.state.best_epoch})")
    return results


if __name__ == "__main__":
    main()

"""What the Trainer costs over a hand-written PyTorch loop, and what it saves with its in-memory loader.

Trains the same model (MLP 64-256-256-10), data (the embedded digits, standardised, a seeded
70/15/15 split), seed, batch size (32) and epochs (30) on one CPU thread with:

  (a) a hand-written loop over DataLoader(TensorDataset), validating every epoch;
  (b) the Trainer over the same DataLoader (same validation, accuracy by torchmetrics);
  (c) PyTorch Lightning's Trainer, when ``lightning`` is importable (no logger, checkpoint or bar);
  (d) the Trainer with its in-memory loader (the pipeline's default);
  (e) (d) plus a checkpoint after every epoch (background write, fsync), as the pipeline does.

Each loop runs ``--repeats`` times, interleaved; the median wall time counts (the median CPU time
of the process and the fastest wall time are printed beside it: on a shared, busy machine they
are the steadier figures). Prints the
ratios against their targets: (b)/(a) <= 1.03 with final weights bit-identical to (a),
(d)/(a) <= 0.80, (b)/(c) <= 0.75, and checkpointing <= 5% of the training time, both as
(e)/(d) - 1 and as the training thread's own time inside the checkpoint callback.

    python bench/overhead.py [--repeats 5] [--epochs 30]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
SEED = 42
BATCH = 32

Tensors = tuple[torch.Tensor, torch.Tensor]


def load_digits() -> tuple[Tensors, Tensors]:
    """Standardised digits features, split 70/15 (train/val) by a seeded permutation."""
    with gzip.open(ROOT / "data/raw/digits.csv.gz", "rt") as file:
        frame = pd.read_csv(file)
    labels = frame.pop(frame.columns[-1]).to_numpy(dtype=np.int64).copy()
    x = torch.from_numpy(frame.to_numpy(dtype=np.float32).copy())
    y = torch.from_numpy(labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SEED))
    n_train, n_val = int(0.7 * len(y)), int(0.15 * len(y))
    train, val = order[:n_train], order[n_train : n_train + n_val]
    mean, std = x[train].mean(0), x[train].std(0).clamp_min(1e-6)
    x = (x - mean) / std
    return (x[train], y[train]), (x[val], y[val])


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def setup() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(SEED)
    model = make_model()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def loaders(train: Tensors, val: Tensors) -> tuple[DataLoader, DataLoader]:
    return (
        DataLoader(TensorDataset(*train), batch_size=BATCH, shuffle=True),
        DataLoader(TensorDataset(*val), batch_size=256),
    )


def raw_loop(train: Tensors, val: Tensors, epochs: int) -> nn.Module:
    """(a): the loop a PyTorch user writes by hand."""
    model, optimizer = setup()
    train_loader, val_loader = loaders(train, val)
    criterion = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for x, y in train_loader:
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        total, correct, loss_sum = 0, 0, 0.0
        with torch.no_grad():
            for x, y in val_loader:
                out = model(x)
                loss_sum += criterion(out, y).item() * len(y)
                correct += int((out.argmax(1) == y).sum())
                total += len(y)
        _ = (loss_sum / total, correct / total)
    return model


CHECKPOINT_SECONDS: list[float] = []  # main-thread seconds spent checkpointing, per run of (e)


def timed_checkpoint(folder: Path) -> Any:
    """The pipeline's Checkpoint callback, timing what it costs the training thread."""
    from trainflow.training.callbacks import Checkpoint

    class TimedCheckpoint(Checkpoint):
        spent = 0.0

        def save(self, trainer: Any) -> None:
            start = time.perf_counter()
            super().save(trainer)
            self.spent += time.perf_counter() - start

        def on_fit_end(self, trainer: Any) -> None:
            start = time.perf_counter()
            super().on_fit_end(trainer)  # waits for the last write
            self.spent += time.perf_counter() - start
            CHECKPOINT_SECONDS.append(self.spent)

    return TimedCheckpoint(folder)


def trainer_loop(
    train: Tensors, val: Tensors, epochs: int, memory: bool = False, checkpoint_dir: Path | None = None
) -> nn.Module:
    """(b), (d), (e): the Trainer over a DataLoader or its in-memory loader."""
    from torchmetrics.classification import MulticlassAccuracy

    from trainflow import Trainer
    from trainflow.training.loaders import InMemoryLoader

    model, optimizer = setup()
    if memory:
        train_loader = InMemoryLoader(*train, batch_size=BATCH, shuffle=True, seed=SEED)
        val_loader = InMemoryLoader(*val, batch_size=256)
    else:
        train_loader, val_loader = loaders(train, val)
    trainer = Trainer(
        model,
        train_loader,
        val_loader,
        None,
        optimizer,
        nn.CrossEntropyLoss(),
        metrics={"accuracy": MulticlassAccuracy(10, average="micro")},
        callbacks=[timed_checkpoint(checkpoint_dir)] if checkpoint_dir is not None else [],
        progress="off",
        echo=lambda line: None,
    )
    return trainer.fit(epochs)


def lightning_loop(train: Tensors, val: Tensors, epochs: int) -> nn.Module | None:
    """(c): Lightning with everything optional switched off; None when it is not installed."""
    try:
        import lightning as L
    except ImportError:
        return None

    class Module(L.LightningModule):
        def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
            super().__init__()
            self.model, self.opt, self.criterion = model, optimizer, nn.CrossEntropyLoss()

        def training_step(self, batch: Tensors, index: int) -> torch.Tensor:
            return self.criterion(self.model(batch[0]), batch[1])

        def validation_step(self, batch: Tensors, index: int) -> None:
            out = self.model(batch[0])
            self.log("val_loss", self.criterion(out, batch[1]), prog_bar=False)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return self.opt

    model, optimizer = setup()
    train_loader, val_loader = loaders(train, val)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(Module(model, optimizer), train_loader, val_loader)
    return model


def timed(run: Callable[[], nn.Module | None]) -> tuple[float, float, nn.Module | None]:
    """Wall seconds, CPU seconds of this process (all threads), and the trained model."""
    wall, cpu = time.perf_counter(), time.process_time()
    model = run()
    return time.perf_counter() - wall, time.process_time() - cpu, model


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train, val = load_digits()
    epochs = args.epochs

    with tempfile.TemporaryDirectory() as folder:
        runs: dict[str, Callable[[], nn.Module | None]] = {
            "a": lambda: raw_loop(train, val, epochs),
            "b": lambda: trainer_loop(train, val, epochs),
            "c": lambda: lightning_loop(train, val, epochs),
            "d": lambda: trainer_loop(train, val, epochs, memory=True),
            "e": lambda: trainer_loop(train, val, epochs, memory=True, checkpoint_dir=Path(folder) / "ckpt"),
        }
        for run in runs.values():  # warm-up: imports, allocator, lazy initialisation
            timed(run)
        CHECKPOINT_SECONDS.clear()
        wall: dict[str, list[float]] = {key: [] for key in runs}
        cpu: dict[str, list[float]] = {key: [] for key in runs}
        models: dict[str, nn.Module | None] = {}
        for _ in range(args.repeats):
            for key, run in runs.items():
                seconds, cpu_seconds, models[key] = timed(run)
                wall[key].append(seconds)
                cpu[key].append(cpu_seconds)
    median = {key: statistics.median(values) for key, values in wall.items()}
    median_cpu = {key: statistics.median(values) for key, values in cpu.items()}
    best = {key: min(values) for key, values in wall.items()}
    lightning = models["c"] is not None

    labels = {
        "a": "(a) hand-written loop, DataLoader",
        "b": "(b) Trainer, DataLoader",
        "c": "(c) Lightning, DataLoader",
        "d": "(d) Trainer, in-memory loader",
        "e": "(e) (d) + checkpoint every epoch",
    }
    print(f"MLP 64-256-256-10 on digits, {epochs} epochs, batch {BATCH}, 1 thread, median of {args.repeats}")
    print(f"  {'':36s} {'wall s':>8s} {'[min .. max]':>17s} {'cpu s':>8s}")
    for key, label in labels.items():
        if key == "c" and not lightning:
            print(f"  {label:36s} skipped: lightning is not installed (pip install -e '.[bench]')")
            continue
        spread = f"[{min(wall[key]):.3f} .. {max(wall[key]):.3f}]"
        print(f"  {label:36s} {median[key]:8.3f} {spread:>17s} {median_cpu[key]:8.3f}")

    identical = same_weights(models["a"], models["b"])  # type: ignore[arg-type]
    spent = statistics.median(CHECKPOINT_SECONDS) / median["e"]

    def ratio(x: str, y: str, offset: float = 0.0) -> tuple[float, float, float]:
        return (
            median[x] / median[y] - offset,
            median_cpu[x] / median_cpu[y] - offset,
            best[x] / best[y] - offset,
        )

    checks = [("(b)/(a)", *ratio("b", "a"), 1.03), ("(d)/(a)", *ratio("d", "a"), 0.80)]
    checks.append(("checkpointing: (e)/(d) - 1", *ratio("e", "d", 1.0), 0.05))
    if lightning:
        checks.insert(1, ("(b)/(c)", *ratio("b", "c"), 0.75))
    ok = identical
    print(f"  {'ratio (target judged on median wall)':36s} {'wall':>8s} {'cpu':>8s} {'min wall':>9s}   target")
    for name, value, value_cpu, value_min, target in checks:
        passed = value <= target
        ok &= passed
        verdict = "ok" if passed else "MISSED"
        print(f"  {name:36s} {value:8.3f} {value_cpu:8.3f} {value_min:9.3f}   <= {target:.2f}  {verdict}")
    verdict = "ok" if spent <= 0.05 else "MISSED"
    print(f"  {'checkpointing, training-thread time':36s} {spent:8.3f} {'':8s} {'':9s}   <= 0.05  {verdict}")
    print(f"  final weights (b) == (a) bit for bit: {identical}")
    if not lightning:
        print("  (b)/(c) not measured: lightning is not installed")
    assert identical, "the Trainer over a DataLoader must reproduce the hand-written loop's weights exactly"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

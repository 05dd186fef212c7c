"""The Trainer's loop and options: hooks and counters, accumulation, clipping, schedulers,
precision, compile, determinism, metrics, test and end-save, and building from a config."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from tests.training.conftest import (
    CLASSES,
    FEATURES,
    assert_same_weights,
    build_trainer,
    make_data,
    make_model,
    val_loader,
    weights,
)
from trainflow import Trainer as ExportedTrainer
from trainflow.config import resolve
from trainflow.data.datasets import DatasetInfo
from trainflow.errors import CheckpointError, ConfigError, DataError
from trainflow.models.snapshot import SNAPSHOT_FORMAT, load_model_snapshot
from trainflow.training.callbacks import Callback, Checkpoint, EndSave, GradNormMonitor, hook_methods
from trainflow.training.checkpoint import list_checkpoints, load_checkpoint
from trainflow.training.loaders import InMemoryLoader
from trainflow.training.trainer import Trainer


class Recorder(Callback):
    """Records every hook call with the counters at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, int]] = []

    def _record(self, name: str, trainer: Trainer) -> None:
        self.calls.append((name, *trainer.position))

    def on_fit_start(self, trainer: Trainer) -> None:
        self._record("fit_start", trainer)

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._record("epoch_start", trainer)

    def on_batch_start(self, trainer: Trainer, batch: Any) -> None:
        self._record("batch_start", trainer)

    def on_before_clip(self, trainer: Trainer) -> None:
        self._record("before_clip", trainer)

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        self._record("before_optimizer_step", trainer)

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        self._record("batch_end", trainer)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self._record("validation_end", trainer)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        self._record("epoch_end", trainer)

    def on_test_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self._record("test_end", trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        self._record("fit_end", trainer)


def test_trainflow_exports_the_trainer_and_plain_pytorch_objects_train() -> None:
    assert ExportedTrainer is Trainer
    trainer = build_trainer(lr=0.05)
    model = trainer.fit(num_epochs=5)
    assert model is trainer.model
    history = trainer.state.history
    assert [record["epoch"] for record in history] == [1, 2, 3, 4, 5]
    assert set(history[0]) == {"epoch", "train/loss", "val/loss", "val/accuracy"}
    assert history[-1]["train/loss"] < history[0]["train/loss"]
    assert history[-1]["val/accuracy"] > 0.7
    assert trainer.position == (5, 0, 30)


def test_hooks_run_in_the_documented_order_with_documented_counters() -> None:
    x, y = make_data(32)
    recorder = Recorder()
    trainer = build_trainer(callbacks=[recorder], grad_accum_steps=2, test_loader=val_loader())
    trainer.train_loader = InMemoryLoader(x, y, batch_size=16)  # 2 batches: one optimizer step
    trainer.fit(1)
    assert recorder.calls == [
        ("fit_start", 0, 0, 0),
        ("epoch_start", 0, 0, 0),
        ("batch_start", 0, 0, 0),
        ("batch_end", 0, 1, 0),
        ("batch_start", 0, 1, 0),
        ("before_clip", 0, 1, 0),
        ("before_optimizer_step", 0, 1, 0),
        ("batch_end", 0, 2, 1),
        ("validation_end", 0, 2, 1),
        ("epoch_end", 1, 0, 1),
        ("test_end", 1, 0, 1),
        ("fit_end", 1, 0, 1),
    ]


def test_base_class_no_op_hooks_are_not_dispatched() -> None:
    class OnlyEpochEnd(Callback):
        def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None: ...

    callback = OnlyEpochEnd()
    assert hook_methods([callback], "on_batch_end") == []
    assert hook_methods([callback], "on_epoch_end") == [callback.on_epoch_end]


def test_callbacks_run_by_order_then_as_given() -> None:
    seen: list[str] = []

    class Named:
        def __init__(self, name: str, order: int) -> None:
            self.name, self.order = name, order

        def on_fit_start(self, trainer: Trainer) -> None:
            seen.append(self.name)

    build_trainer(callbacks=[Named("late", 5), Named("a", 0), Named("b", 0), Named("early", -1)]).fit(1)
    assert seen == ["early", "a", "b", "late"]


def sgd_trainer(batch_size: int, **options: Any) -> Trainer:
    torch.manual_seed(0)
    model = make_model(dropout=0.0)
    x, y = make_data(64)
    return Trainer(
        model,
        InMemoryLoader(x, y, batch_size=batch_size),
        None,
        None,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        progress="off",
        **options,
    )


def test_gradient_accumulation_matches_a_larger_batch() -> None:
    big = sgd_trainer(16)
    big.fit(2)
    accumulated = sgd_trainer(8, grad_accum_steps=2)
    accumulated.fit(2)
    plain_small = sgd_trainer(8)
    plain_small.fit(2)
    assert accumulated.state.global_step == big.state.global_step == 8
    for key, value in weights(big).items():
        torch.testing.assert_close(weights(accumulated)[key], value, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(weights(plain_small)["0.weight"], weights(big)["0.weight"], atol=1e-4)


def test_accumulated_gradients_left_at_the_end_of_an_epoch_are_stepped() -> None:
    trainer = sgd_trainer(16, grad_accum_steps=3)  # 4 batches per epoch: steps after batch 3 and after batch 4
    trainer.fit(2)
    assert trainer.state.global_step == 4
    assert all(p.grad is None for p in trainer.model.parameters())


class GradCheck(Callback):
    """Records the largest gradient entry and the total norm just before the optimizer step."""

    def __init__(self) -> None:
        self.max_abs: list[float] = []
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        grads = [p.grad for p in trainer.parameters]
        self.max_abs.append(max(float(g.abs().max()) for g in grads))
        self.norms.append(float(torch.nn.utils.get_total_norm(grads)))


def test_clip_grad_norm_limits_the_total_norm_and_the_monitor_sees_both_sides() -> None:
    check, monitor = GradCheck(), GradNormMonitor()
    build_trainer(lr=0.01, clip_grad_norm=0.05, callbacks=[monitor, check]).fit(1)
    assert max(check.norms) <= 0.05 * (1 + 1e-5)
    assert monitor.before is not None and monitor.after is not None
    assert monitor.before > 0.05 >= monitor.after * (1 - 1e-5)

    unclipped = GradCheck()
    build_trainer(lr=0.01, callbacks=[unclipped]).fit(1)
    assert max(unclipped.norms) > 0.05


def test_clip_grad_value_limits_every_entry() -> None:
    check = GradCheck()
    build_trainer(lr=0.01, clip_grad_value=0.01, callbacks=[check]).fit(1)
    assert max(check.max_abs) <= 0.01
    unclipped = GradCheck()
    build_trainer(lr=0.01, callbacks=[unclipped]).fit(1)
    assert max(unclipped.max_abs) > 0.01


@pytest.mark.parametrize(("interval", "expected_halvings"), [("epoch", 2), ("step", 12)])
def test_scheduler_steps_per_epoch_or_per_step(interval: str, expected_halvings: int) -> None:
    trainer = build_trainer(lr=0.1, scheduler_interval=interval)
    trainer.scheduler = torch.optim.lr_scheduler.StepLR(trainer.optimizer, step_size=1, gamma=0.5)
    trainer.fit(2)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**expected_halvings)


def test_reduce_on_plateau_is_stepped_with_the_monitored_value() -> None:
    trainer = build_trainer(lr=0.0)  # no learning: val/loss never improves
    trainer.optimizer.param_groups[0]["lr"] = 1e-9
    trainer.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(trainer.optimizer, patience=0, factor=0.5, eps=0.0)
    trainer.fit(3)
    assert trainer.optimizer.param_groups[0]["lr"] < 1e-9


class DtypeProbe(Callback):
    """Records the dtype of the first layer's output during training."""

    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def on_fit_start(self, trainer: Trainer) -> None:
        first = next(m for m in trainer.model.modules() if isinstance(m, nn.Linear))
        first.register_forward_hook(lambda module, args, output: self.dtypes.add(output.dtype))


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_precision_runs_the_forward_pass_under_autocast(precision: str, dtype: torch.dtype) -> None:
    probe = DtypeProbe()
    trainer = build_trainer(precision=precision, callbacks=[probe])
    trainer.fit(2)
    assert probe.dtypes == {dtype}
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay fp32
    assert math.isfinite(trainer.state.history[-1]["val/loss"])


def test_fp16_on_cpu_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"fp16 needs a CUDA device.*use bf16"):
        build_trainer(precision="fp16", device="cpu")


def test_compile_trains_the_compiled_module_and_saves_clean_weights(tmp_path: Path) -> None:
    plain = build_trainer()
    plain.fit(1)
    compiled = build_trainer(compile={"backend": "eager"}, checkpoint_dir=tmp_path)
    compiled.fit(1)
    assert type(compiled._forward).__name__ == "OptimizedModule"
    assert_same_weights(weights(compiled), weights(plain))
    state = load_checkpoint(list_checkpoints(tmp_path)[-1])["model"]["state_dict"]
    assert set(state) == set(weights(plain))


def test_deterministic_mode_is_switched_on_for_the_fit() -> None:
    seen: list[bool] = []

    class Probe(Callback):
        def on_fit_start(self, trainer: Trainer) -> None:
            seen.append(torch.are_deterministic_algorithms_enabled())

    before = torch.are_deterministic_algorithms_enabled()
    try:
        build_trainer(deterministic=True, callbacks=[Probe()]).fit(1)
        build_trainer(deterministic=False, callbacks=[Probe()]).fit(1)
    finally:
        torch.use_deterministic_algorithms(before)
    assert seen == [True, False]


def test_metrics_as_a_collection_and_test_results_at_the_end() -> None:
    trainer = build_trainer(test_loader=val_loader())
    trainer._metrics = trainer.accelerator.place_metrics(
        MetricCollection({"acc": MulticlassAccuracy(CLASSES, average="micro"), "macro": MulticlassAccuracy(CLASSES)})
    )
    trainer.fit(2)
    assert {"val/acc", "val/macro"} <= set(trainer.state.history[-1])
    assert trainer.test_results is not None
    assert set(trainer.test_results) == {"test/loss", "test/acc", "test/macro"}
    assert trainer.test_results["test/acc"] == pytest.approx(trainer.state.history[-1]["val/acc"])  # same data


def test_any_iterable_of_batches_is_a_loader() -> None:
    x, y = make_data(32)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]
    torch.manual_seed(0)
    model = make_model()
    trainer = Trainer(model, batches, batches, None, torch.optim.Adam(model.parameters()), nn.CrossEntropyLoss())
    trainer.fit(2)
    assert trainer.state.global_step == 8 and "val/loss" in trainer.state.history[-1]


def test_empty_loaders_are_data_errors() -> None:
    trainer = build_trainer()
    trainer.train_loader = []
    with pytest.raises(DataError, match="training loader yielded no batches"):
        trainer.fit(1)
    with pytest.raises(DataError, match="val loader yielded no batches"):
        build_trainer(val_loader=[]).fit(1)


def test_best_epoch_follows_monitor_and_mode() -> None:
    trainer = build_trainer(monitor="val/accuracy", mode="max")
    trainer.fit(4)
    accuracies = [record["val/accuracy"] for record in trainer.state.history]
    assert trainer.state.best_value == max(accuracies)
    assert trainer.state.best_epoch == accuracies.index(max(accuracies)) + 1


def test_end_save_writes_final_weights_and_val_and_test_results(tmp_path: Path) -> None:
    trainer = build_trainer(test_loader=val_loader(), callbacks=[EndSave(tmp_path / "end")])
    trainer.fit(2)
    results = json.loads((tmp_path / "end" / "results.json").read_text())
    assert results["epochs"] == 2
    assert set(results["val"]) == {"loss", "accuracy"} and set(results["test"]) == {"loss", "accuracy"}
    assert len(results["history"]) == 2
    saved = torch.load(tmp_path / "end" / "model.pt", weights_only=True)
    assert saved["format"] == SNAPSHOT_FORMAT and saved["config"] is None and saved["epoch"] == 2
    assert_same_weights(saved["model_state"], weights(trainer))
    with pytest.raises(CheckpointError, match="saved without a config"):
        load_model_snapshot(tmp_path / "end" / "model.pt")


# --- building from a config, from_checkpoint, fingerprints ------------------------------------

INFO = DatasetInfo(
    task="classification",
    feature_columns=tuple(f"f{i}" for i in range(FEATURES)),
    label_column="y",
    classes=tuple(range(CLASSES)),
)


def tiny_config(**train: Any) -> Any:
    return resolve(
        {
            "model": {"name": "mlp", "hidden_sizes": [8]},
            "train": {"max_epochs": 3, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}, **train},
            "metrics": ["accuracy"],
        }
    )


def config_trainer(config: Any, folder: Path | None = None, seed: int = 0) -> Trainer:
    torch.manual_seed(seed)
    x, y = make_data(96)
    return Trainer.from_config(
        config,
        INFO,
        InMemoryLoader(x, y, batch_size=16, shuffle=True, seed=1),
        val_loader(),
        checkpoint_dir=folder,
        progress="off",
    )


def test_from_config_builds_from_the_registries() -> None:
    config = tiny_config(scheduler={"name": "cosine"}, early_stopping={"patience": 2}, clip_grad_norm=1.0)
    trainer = config_trainer(config)
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    assert isinstance(trainer.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
    assert trainer.monitor == "val/accuracy" and trainer.mode == "max" and trainer.clip_grad_norm == 1.0
    trainer.fit()
    assert trainer.state.epoch == 3 and "val/accuracy" in trainer.state.history[-1]


def test_from_checkpoint_rebuilds_everything_and_continues_exactly(tmp_path: Path) -> None:
    reference = config_trainer(tiny_config(scheduler={"name": "cosine"}))
    reference.fit(3)
    config_trainer(tiny_config(scheduler={"name": "cosine"}), tmp_path).fit(2)

    x, y = make_data(96)
    loader = InMemoryLoader(x, y, batch_size=16, shuffle=True, seed=1)
    restored = Trainer.from_checkpoint(list_checkpoints(tmp_path)[-1], loader, val_loader(), progress="off")
    assert restored.position == (2, 0, 12)
    restored.fit(3)
    assert_same_weights(weights(restored), weights(reference))


def test_from_checkpoint_without_a_config_says_what_to_do(tmp_path: Path) -> None:
    build_trainer(checkpoint_dir=tmp_path).fit(1)
    with pytest.raises(CheckpointError, match="without a config"):
        Trainer.from_checkpoint(list_checkpoints(tmp_path)[-1])


def test_changed_training_config_starts_fresh_and_says_why(tmp_path: Path, capsys: Any) -> None:
    config_trainer(tiny_config(), tmp_path).fit(2)
    capsys.readouterr()
    changed = config_trainer(tiny_config(optimizer={"name": "adam", "lr": 0.02}), tmp_path)
    changed.fit(1, resume=True)
    out = capsys.readouterr().out
    assert "different training config (train.optimizer.lr 0.01 -> 0.02)" in out and "starting fresh" in out
    assert changed.resumed_from is None and changed.state.epoch == 1
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-e0001-b000000-s00000006.pt"]


def test_raising_only_max_epochs_or_patience_keeps_the_checkpoint(tmp_path: Path) -> None:
    config_trainer(tiny_config(), tmp_path).fit(2)
    raised = config_trainer(tiny_config(max_epochs=4, early_stopping={"patience": 9}), tmp_path)
    raised.fit(resume=True)
    assert raised.resumed_from is not None and raised.epochs_run == 2


def test_resuming_from_an_explicit_checkpoint_of_another_config_is_an_error(tmp_path: Path) -> None:
    config_trainer(tiny_config(), tmp_path).fit(1)
    other = config_trainer(tiny_config(grad_accum_steps=2))
    with pytest.raises(CheckpointError, match=r"train.grad_accum_steps 1 -> 2"):
        other.fit(2, resume=list_checkpoints(tmp_path)[-1])


def test_checkpoint_callback_given_explicitly_is_not_duplicated(tmp_path: Path) -> None:
    trainer = build_trainer(checkpoint_dir=tmp_path / "a", callbacks=[Checkpoint(tmp_path / "b")])
    assert [c.folder for c in trainer.callbacks if isinstance(c, Checkpoint)] == [tmp_path / "b"]

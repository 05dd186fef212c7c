"""accelerator.prepare: process group, device, precision and compile settled in one call."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainflow.errors import ConfigError
from trainflow.training.accelerator import prepare


def test_a_single_cpu_process_gets_plain_fp32() -> None:
    accelerator = prepare(device="cpu")
    assert (accelerator.world_size, accelerator.device, accelerator.scaler) == (1, torch.device("cpu"), None)
    model = nn.Linear(2, 2)
    assert accelerator.forward(model) is model
    assert accelerator.training_forward(model, model) is model
    batch = {"x": torch.ones(2), "rest": [torch.zeros(1)]}
    assert accelerator.to_device(batch) is batch  # nothing to move on the CPU
    with accelerator.autocast():
        assert model(torch.ones(1, 2)).dtype == torch.float32


def test_bf16_autocasts_the_forward_pass() -> None:
    accelerator = prepare(device="cpu", precision="bf16")
    with accelerator.autocast():
        assert nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.bfloat16


def test_precision_errors_name_the_key_and_the_way_out() -> None:
    with pytest.raises(ConfigError, match=r"train.precision: fp16 needs a CUDA device.*use bf16 or fp32"):
        prepare(device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match=r"train.precision: must be fp32, bf16 or fp16, got 'fp8'"):
        prepare(device="cpu", precision="fp8")  # type: ignore[arg-type]


def test_compile_options_reach_torch_compile() -> None:
    accelerator = prepare(device="cpu", compile={"backend": "eager"})
    assert accelerator.compile_options == {"backend": "eager"}
    compiled = accelerator.forward(nn.Linear(2, 2))
    assert type(compiled).__name__ == "OptimizedModule"
    assert prepare(device="cpu", compile=True).compile_options == {}


def test_metrics_are_placed_once_for_validation_and_once_for_test() -> None:
    from torchmetrics.classification import MulticlassAccuracy

    placed = prepare(device="cpu").place_metrics({"accuracy": MulticlassAccuracy(3)})
    assert set(placed) == {"val", "test"} and placed["val"] is not placed["test"]
    assert prepare(device="cpu").place_metrics(None) == {}

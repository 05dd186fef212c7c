"""DDP: sharding, the torchrun command, and real multi-process runs of the Trainer (gloo on CPU).

The multi-process tests start torchrun jobs whose workers run :func:`ddp_worker` below: plain
Trainer code with no distributed call in it (the Trainer joins the process group, shards the
loaders and wraps the model by itself). A module-scoped reference run (2 processes x 8 samples)
is compared with one process training on the same global batch of 16, and reused by the
resume, restart and two-node tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from tests.training.conftest import CLASSES, make_data, make_model
from trainflow.config import Config, DistributedConfig, load_config, resolve, to_dict
from trainflow.errors import ConfigError
from trainflow.training import distributed, launch
from trainflow.training.callbacks import Callback, Checkpoint
from trainflow.training.checkpoint import list_checkpoints
from trainflow.training.distributed import ShardedInMemoryLoader, ShardSampler, shard_indices
from trainflow.training.loaders import InMemoryLoader
from trainflow.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 4
GLOBAL_BATCH = 16  # 96 training samples: 6 optimizer steps per epoch
MARKER_ENV = "TRAINFLOW_TEST_JOB"


# ---------------------------------------------------------------------------------------------
# Sharding (no process group needed)


def labels(loader: Any) -> list[list[int]]:
    return [batch[1].tolist() for batch in loader]


def samples(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n)


@pytest.mark.parametrize(("size", "world"), [(10, 2), (10, 3), (7, 4), (3, 4)])
def test_even_shards_are_equal_and_cover_every_sample(size: int, world: int) -> None:
    shares = [shard_indices(size, rank, world, None, even=True).tolist() for rank in range(world)]
    assert len({len(share) for share in shares}) == 1
    assert set().union(*shares) == set(range(size))


@pytest.mark.parametrize(("size", "world"), [(10, 2), (10, 3), (7, 4), (3, 4)])
def test_exact_shards_split_the_samples_without_repeats(size: int, world: int) -> None:
    shares = [shard_indices(size, rank, world, None, even=False).tolist() for rank in range(world)]
    assert sorted(i for share in shares for i in share) == list(range(size))


@pytest.mark.parametrize("world", [2, 3])
def test_the_ranks_batches_make_up_the_single_process_batch(world: int) -> None:
    """Batch i of every rank, together, is batch i of one process with world x the batch size."""
    single = InMemoryLoader(*samples(48), batch_size=4 * world, shuffle=True, seed=5)
    ranks = [
        ShardedInMemoryLoader(*samples(48), rank=r, world_size=world, batch_size=4, shuffle=True, seed=5)
        for r in range(world)
    ]
    for epoch in range(3):
        single.set_epoch(epoch)
        for loader in ranks:
            loader.set_epoch(epoch)
        expected = labels(single)
        got = [labels(loader) for loader in ranks]
        assert all(len(batches) == len(expected) for batches in got)
        for index, batch in enumerate(expected):
            assert sorted(i for batches in got for i in batches[index]) == sorted(batch)


def test_uneven_data_gives_every_rank_the_same_number_of_batches() -> None:
    ranks = [ShardedInMemoryLoader(*samples(11), rank=r, world_size=3, batch_size=2) for r in range(3)]
    assert [len(loader) for loader in ranks] == [2, 2, 2]
    assert [len(labels(loader)) for loader in ranks] == [2, 2, 2]
    exact = [ShardedInMemoryLoader(*samples(11), rank=r, world_size=3, batch_size=2, even=False) for r in range(3)]
    assert sorted(i for loader in exact for batch in labels(loader) for i in batch) == list(range(11))


def test_a_mid_epoch_position_converts_across_world_sizes() -> None:
    """Two ranks 4 batches of 4 into an epoch (32 samples done) resume in one process at sample 32,
    and a single process 8 batches in resumes two ranks at their 4th batch."""

    def sharded(rank: int, world: int) -> ShardedInMemoryLoader:
        return ShardedInMemoryLoader(*samples(64), rank=rank, world_size=world, batch_size=4, shuffle=True, seed=1)

    ranks = [sharded(0, 2), sharded(1, 2)]
    seen: list[int] = []
    for loader in ranks:
        iterator = iter(loader)
        seen += [i for _ in range(4) for i in next(iterator)[1].tolist()]
    state = ranks[0].state_dict()
    assert state["world_size"] == 2 and state["samples_done"] == 32
    plain = InMemoryLoader(*samples(64), batch_size=4, shuffle=True, seed=1)
    plain.load_state_dict(state)
    rest = [i for batch in labels(plain) for i in batch]
    assert len(rest) == 32 and sorted(seen + rest) == list(range(64))
    one = sharded(0, 1)
    one.load_state_dict(state)
    assert [i for batch in labels(one) for i in batch] == rest

    single = InMemoryLoader(*samples(64), batch_size=4, shuffle=True, seed=1)
    iterator = iter(single)
    done = [i for _ in range(8) for i in next(iterator)[1].tolist()]
    resumed = []
    for rank in range(2):
        loader = sharded(rank, 2)
        loader.load_state_dict(single.state_dict())
        resumed += [i for batch in labels(loader) for i in batch]
    assert sorted(done + resumed) == list(range(64))


def test_shard_sampler_and_dataloader_rebuild() -> None:
    dataset = TensorDataset(*samples(10))
    loader = DataLoader(dataset, batch_size=3, shuffle=True, drop_last=False)
    train = distributed.shard_dataloader(loader, 1, 2, train=True)
    assert isinstance(train.sampler, DistributedSampler) and train.sampler.shuffle
    assert train.batch_size == 3 and len(train) == 2  # 5 samples per rank
    val = distributed.shard_dataloader(DataLoader(dataset, batch_size=4), 1, 2, train=False)
    assert isinstance(val.sampler, ShardSampler) and list(val.sampler) == [1, 3, 5, 7, 9]
    assert distributed.shard_dataloader(train, 1, 2, train=True) is train


def test_a_single_process_is_left_alone() -> None:
    loader = InMemoryLoader(*samples(10), batch_size=2)
    assert not distributed.is_distributed()
    assert distributed.setup() == 1
    assert distributed.shard_loader(loader, train=True) is loader
    assert distributed.reduce_sum(3) == 3 and distributed.count_true(True, False) == (1, 0)
    assert distributed.is_main_process()
    model = nn.Linear(2, 2)
    assert distributed.wrap_model(model, torch.device("cpu")) is model


def test_backend_resolution() -> None:
    assert distributed.resolve_backend("auto", torch.device("cpu")) == "gloo"
    assert distributed.resolve_backend("auto", torch.device("cuda", 0)) == "nccl"
    with pytest.raises(ConfigError, match=r"train\.distributed\.backend: nccl needs CUDA"):
        distributed.resolve_backend("nccl", torch.device("cpu"))


# ---------------------------------------------------------------------------------------------
# The launch command


def test_torchrun_command_for_one_node_and_for_several() -> None:
    one = launch.torchrun_command(DistributedConfig(nproc_per_node=2), ["-m", "pkg"], run_id="abc")
    assert one[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=2" in one and "--standalone" in one and one[-2:] == ["-m", "pkg"]
    many = launch.torchrun_command(
        DistributedConfig(nproc_per_node=4, nnodes=2, rdzv_endpoint="head:29400", max_restarts=3),
        ["x.py"],
        run_id="abc",
    )
    assert {"--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=head:29400", "--rdzv-id=abc"} <= set(many)
    assert "--max-restarts=3" in many and "--standalone" not in many


def test_process_counts() -> None:
    assert launch.resolve_nproc(3) == 3
    assert launch.resolve_nproc("auto") == (torch.cuda.device_count() or 1)
    assert launch.world_size(DistributedConfig(nproc_per_node=2, nnodes=3)) == 6
    assert not launch.needs_launch(DistributedConfig())
    assert launch.needs_launch(DistributedConfig(nproc_per_node=1, nnodes=2))


def test_every_node_of_a_job_meets_at_the_same_rendezvous() -> None:
    def config(**distributed_settings: Any) -> Config:
        return resolve({"train": {"distributed": distributed_settings}})

    head = launch.rendezvous_id(config(nnodes=2, node_rank=0))
    assert launch.rendezvous_id(config(nnodes=2, node_rank=1, rdzv_endpoint="head:1")) == head
    assert launch.rendezvous_id(resolve({"seed": 1, "train": {"distributed": {"nnodes": 2}}})) != head


def test_the_workers_params_file_resolves_to_the_same_config(tmp_path: Path) -> None:
    import yaml

    config = resolve({"train": {"optimizer": {"name": "sgd", "lr": 0.1}, "distributed": {"nproc_per_node": 2}}})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    assert load_config(path) == config


# ---------------------------------------------------------------------------------------------
# Real processes: the worker, and how tests start it


class KillAt(Callback):
    """SIGKILLs rank ``rank`` after optimizer step ``step`` on torchrun's first attempt only."""

    def __init__(self, step: int, rank: int) -> None:
        self.step, self.rank = step, rank

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        first_attempt = distributed.restart_count() == 0
        if first_attempt and distributed.get_rank() == self.rank and trainer.state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class StopAt(Callback):
    """Requests an immediate stop on rank ``rank`` alone after optimizer step ``step``."""

    def __init__(self, step: int, rank: int) -> None:
        self.step, self.rank = step, rank

    def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
        if distributed.get_rank() == self.rank and trainer.state.global_step == self.step:
            trainer.request_stop(f"stop requested by rank {self.rank}", now=True)


def train(options: Mapping[str, Any]) -> Trainer:
    """The run every test compares: plain Trainer code, the same in one process and under torchrun.

    Only the per-process batch size differs: the global batch is ``GLOBAL_BATCH`` either way.
    """
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = make_model(dropout=0.0)  # dropout masks depend on the batch split; leave them out
    x, y = make_data(96, seed=0)
    vx, vy = make_data(48, seed=1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    callbacks: list[Any] = []
    if options.get("checkpoints"):
        callbacks.append(Checkpoint(options["checkpoints"], keep_last=EPOCHS, background=False))
    if options.get("kill_at_step"):
        callbacks.append(KillAt(options["kill_at_step"], rank=1))
    if options.get("stop_at_step"):
        callbacks.append(StopAt(options["stop_at_step"], rank=1))
    trainer = Trainer(
        model,
        InMemoryLoader(x, y, batch_size=GLOBAL_BATCH // world, shuffle=True, seed=7),
        InMemoryLoader(vx, vy, batch_size=10),  # 48 rows: 3 batches on each of 2 ranks, the last short
        None,
        torch.optim.Adam(model.parameters(), lr=0.05),
        nn.CrossEntropyLoss(),
        metrics={
            "accuracy": MulticlassAccuracy(CLASSES, average="micro"),
            "f1": MulticlassF1Score(CLASSES, average="macro"),
        },
        callbacks=callbacks,
        progress="off",
    )
    trainer.fit(options.get("epochs", EPOCHS), resume=options.get("resume", False))
    return trainer


def save_result(trainer: Trainer, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.save({key: value.clone() for key, value in trainer.model.state_dict().items()}, out / "weights.pt")
    (out / "history.json").write_text(json.dumps(trainer.state.history))
    facts = {
        "node_rank": os.environ.get(distributed.NODE_RANK_ENV),
        "global_step": trainer.state.global_step,
        "stop_reason": trainer.stop_reason,
    }
    (out / "facts.json").write_text(json.dumps(facts))


def ddp_worker(options_json: str) -> None:
    """Entry point of the torchrun workers: train, and let the main process save the result."""
    options = json.loads(options_json)
    trainer = train(options)
    if trainer.is_main_process:
        save_result(trainer, Path(options["out"]))
    distributed.teardown()


def torchrun(options: Mapping[str, Any], *, nproc: int = 2, max_restarts: int = 0, **settings: Any) -> int:
    """Run :func:`ddp_worker` under torchrun; returns its exit code, and checks that no process
    of the job is left afterwards."""
    marker = uuid.uuid4().hex
    code = _torchrun(options, marker, DistributedConfig(nproc_per_node=nproc, max_restarts=max_restarts, **settings))
    assert running_with_marker(marker) == []
    return code


def _torchrun(options: Mapping[str, Any], marker: str, settings: DistributedConfig, node_rank: int = 0) -> int:
    code = f"from tests.training.test_distributed import ddp_worker; ddp_worker({json.dumps(options)!r})"
    command = launch.torchrun_command(settings, ["--no-python", sys.executable, "-c", code], run_id="tests")
    env = {MARKER_ENV: marker, distributed.NODE_RANK_ENV: str(node_rank), "PYTHONPATH": pythonpath()}
    return launch.run_torchrun(command, env=env, cwd=REPO)


def pythonpath() -> str:
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)


def running_with_marker(marker: str) -> list[int]:
    return launch.processes_with_env(MARKER_ENV, marker)


def load_result(out: Path) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    weights = torch.load(out / "weights.pt", weights_only=True)
    return weights, json.loads((out / "history.json").read_text())


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=atol), f"{key}: max diff {(a[key] - b[key]).abs().max()}"


def assert_same_history(a: list[dict[str, float]], b: list[dict[str, float]], atol: float = 1e-6) -> None:
    assert [sorted(r) for r in a] == [sorted(r) for r in b]
    for ra, rb in zip(a, b, strict=True):
        for key in ra:
            assert abs(ra[key] - rb[key]) <= atol, f"epoch {ra['epoch']} {key}: {ra[key]} vs {rb[key]}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 processes x 8 samples for EPOCHS epochs, a checkpoint after every epoch."""
    folder = tmp_path_factory.mktemp("ddp-reference")
    options = {"out": str(folder / "out"), "checkpoints": str(folder / "checkpoints")}
    assert torchrun(options) == 0
    return folder


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 process x 16 samples (the same global batch), in this process."""
    folder = tmp_path_factory.mktemp("single-reference")
    save_result(train({"checkpoints": str(folder / "checkpoints")}), folder / "out")
    return folder


def checkpoint_after_epoch(folder: Path, epoch: int, into: Path) -> Path:
    """A copy of ``folder``'s end-of-``epoch`` checkpoint, alone in the folder ``into``."""
    into.mkdir(parents=True)
    (source,) = [p for p in list_checkpoints(folder) if p.name.startswith(f"ckpt-e{epoch:04d}-b000000")]
    shutil.copy2(source, into / source.name)
    return into


# ---------------------------------------------------------------------------------------------
# Real processes: the tests


@pytest.mark.e2e
def test_two_processes_match_one_process_with_the_same_global_batch(reference: Path, single: Path) -> None:
    ddp_weights, ddp_history = load_result(reference / "out")
    one_weights, one_history = load_result(single / "out")
    assert_close(ddp_weights, one_weights)
    assert_same_history(ddp_history, one_history)  # train/loss, val/loss, val/accuracy, val/f1
    assert len(ddp_history) == EPOCHS and "val/f1" in ddp_history[0]
    assert not any(key.startswith("module.") for key in ddp_weights)


@pytest.mark.e2e
def test_a_ddp_checkpoint_resumes_in_one_process(reference: Path, single: Path, tmp_path: Path) -> None:
    folder = checkpoint_after_epoch(reference / "checkpoints", 2, tmp_path / "checkpoints")
    resumed = train({"checkpoints": str(folder), "resume": True})
    assert resumed.resumed_from is not None and resumed.epochs_run == EPOCHS - 2
    weights, history = load_result(single / "out")
    assert_close(dict(resumed.model.state_dict()), weights)
    assert_same_history(resumed.state.history, history)


@pytest.mark.e2e
def test_a_single_process_checkpoint_resumes_under_ddp(reference: Path, single: Path, tmp_path: Path) -> None:
    folder = checkpoint_after_epoch(single / "checkpoints", 2, tmp_path / "checkpoints")
    options = {"out": str(tmp_path / "out"), "checkpoints": str(folder), "resume": True}
    assert torchrun(options) == 0
    weights, history = load_result(tmp_path / "out")
    reference_weights, reference_history = load_result(reference / "out")
    assert_close(weights, reference_weights)
    assert_same_history(history, reference_history)


@pytest.mark.e2e
def test_a_stop_requested_on_one_rank_stops_every_rank_at_the_same_batch(tmp_path: Path) -> None:
    assert torchrun({"out": str(tmp_path / "out"), "stop_at_step": 8}) == 0  # no rank left waiting
    facts = json.loads((tmp_path / "out" / "facts.json").read_text())
    assert facts["global_step"] == 8  # the main process (rank 0) stopped at rank 1's batch
    assert facts["stop_reason"] == "stop requested by rank 1"


@pytest.mark.e2e
def test_a_killed_rank_fails_the_job_and_leaves_no_process(tmp_path: Path) -> None:
    options = {"out": str(tmp_path / "out"), "checkpoints": str(tmp_path / "checkpoints"), "kill_at_step": 9}
    # torchrun stops the surviving rank as soon as it sees the dead one; were it blocked in a
    # collective, it would give up after the 30 s collective timeout anyway
    assert torchrun(options, timeout_s=30) != 0
    assert not (tmp_path / "out").exists()


@pytest.mark.e2e
def test_a_restart_resumes_from_the_last_checkpoint_and_matches_the_uninterrupted_run(
    reference: Path, tmp_path: Path
) -> None:
    options = {"out": str(tmp_path / "out"), "checkpoints": str(tmp_path / "checkpoints"), "kill_at_step": 9}
    assert torchrun(options, max_restarts=1) == 0  # killed in epoch 2, resumed from the end of epoch 1
    weights, history = load_result(tmp_path / "out")
    reference_weights, reference_history = load_result(reference / "out")
    assert_close(weights, reference_weights, atol=0.0)
    assert history == reference_history


@pytest.mark.e2e
def test_two_torchrun_agents_train_together_as_two_nodes(reference: Path, tmp_path: Path) -> None:
    """Two agents on this machine, one process each, meet by c10d rendezvous: world size 2."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = DistributedConfig(nproc_per_node=1, nnodes=2, rdzv_endpoint=f"127.0.0.1:{port}", timeout_s=60)
    options = {"out": str(tmp_path / "out")}
    marker = uuid.uuid4().hex
    codes: dict[int, int] = {}

    def node(rank: int) -> None:
        codes[rank] = _torchrun(options, marker, settings, node_rank=rank)

    threads = [threading.Thread(target=node, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == {0: 0, 1: 0}
    assert running_with_marker(marker) == []
    assert json.loads((tmp_path / "out" / "facts.json").read_text())["node_rank"] == "0"  # node 0 wrote
    weights, history = load_result(tmp_path / "out")
    reference_weights, reference_history = load_result(reference / "out")
    assert_close(weights, reference_weights, atol=0.0)
    assert history == reference_history

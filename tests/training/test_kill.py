"""SIGKILL a real training process at random steps (and once mid-checkpoint-write), resume each
time, and compare the end result bit for bit with a run that was never interrupted.

The training runs in child processes forked from a forkserver that has torch imported, so each
start costs milliseconds instead of an interpreter start. The child reports each finished batch
over a pipe; the parent sends SIGKILL once the chosen step is reported, so the kill lands while
the child is somewhere in the next step: mid-forward, mid-optimizer-step or mid-checkpoint-write
(a checkpoint is written after every step on a background thread). Kill steps are drawn from a
seeded generator: random, but the same on every run of the suite.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.training import kill_driver
from tests.training.conftest import assert_same_weights
from trainflow.training.checkpoint import list_checkpoints

TOTAL_STEPS = kill_driver.EPOCHS * kill_driver.BATCHES_PER_EPOCH
PAUSE = 0.005  # seconds per batch in the child, so the parent's kill lands inside the run


@pytest.fixture(scope="module")
def context() -> Iterator[Any]:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch._dynamo", "tests.training.kill_driver"])  # optimizers import dynamo
    yield ctx
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)  # end the forkserver this module started
    if stop is not None:
        stop()


class Child:
    """One training process and the messages it sent."""

    def __init__(self, ctx: Any, folder: Path, loader: str, **options: Any) -> None:
        self.out = folder / "final.pt"
        receive, send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=kill_driver.train, args=(str(folder), str(self.out), loader, send), kwargs=options
        )
        self.process.start()
        send.close()
        self.conn: Connection = receive
        self.messages: list[tuple[Any, ...]] = []

    def run(self, kill_at_step: int | None = None, kill_when_writing: bool = False) -> int | None:
        """Follow the child; SIGKILL it at the first batch with step >= ``kill_at_step`` (or when it
        hangs in a checkpoint write). Returns its exit code."""
        while True:
            try:
                message = self.conn.recv()
            except EOFError:
                break
            self.messages.append(message)
            kind = message[0]
            due = kind == "batch" and kill_at_step is not None and message[1] >= kill_at_step
            if due or (kind == "writing" and kill_when_writing):
                os.kill(self.process.pid, signal.SIGKILL)
                break
            if kind == "done":
                break
        self.process.join()
        self.conn.close()
        return self.process.exitcode

    def echoed(self, text: str) -> bool:
        return any(kind == "echo" and text in message for kind, message, *_ in self.messages)


def outputs(folder: Path) -> tuple[dict[str, torch.Tensor], bytes, bytes]:
    weights = torch.load(folder / "final.pt", weights_only=True)
    return weights, (folder / "history.csv").read_bytes(), (folder / "train.json").read_bytes()


@pytest.mark.parametrize(("loader", "kills"), [("memory", 4), ("dataloader", 3)])
def test_sigkill_at_random_steps_then_resume_is_bit_identical(
    context: Any, tmp_path: Path, loader: str, kills: int
) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    assert Child(context, reference, loader).run() == 0
    expected = outputs(reference)

    folder = tmp_path / "killed"
    folder.mkdir()
    rng = random.Random(f"trainflow-kill-{loader}")
    targets = sorted(rng.sample(range(2, TOTAL_STEPS - 3), kills))
    checkpoints = folder / "checkpoints"
    for number, target in enumerate(targets):
        had_checkpoint = bool(list_checkpoints(checkpoints))
        child = Child(context, folder, loader, pause=PAUSE)
        assert child.run(kill_at_step=target) == -signal.SIGKILL, f"kill at step {target} came too late"
        assert child.echoed("resumed from") == had_checkpoint
        if number == 1 and loader == "memory":  # one more kill, inside a checkpoint write
            child = Child(context, folder, loader, pause=PAUSE, hang_at_write=rng.randint(1, 3))
            assert child.run(kill_when_writing=True) == -signal.SIGKILL
            assert child.echoed("resumed from")
            assert list(checkpoints.glob(".ckpt-*.tmp")), "the killed write left its temporary file"

    final = Child(context, folder, loader)
    assert final.run() == 0
    assert final.echoed("resumed from")
    assert not list(checkpoints.glob(".ckpt-*.tmp"))

    weights, history, summary = outputs(folder)
    assert_same_weights(weights, expected[0])
    assert history == expected[1]
    assert summary == expected[2]

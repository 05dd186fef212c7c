"""Checkpoint files: layout, atomic writes, safe loading, and falling back past a corrupt newest file."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.training.conftest import assert_same_weights, build_trainer, weights
from trainflow.errors import CheckpointError
from trainflow.training import checkpoint as ckpt
from trainflow.training.callbacks import Checkpoint
from trainflow.training.checkpoint import (
    CheckpointWriter,
    checkpoint_name,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    parse_name,
    remove_stale_temporaries,
    save_checkpoint,
)


def trained_folder(tmp_path: Path, epochs: int = 3) -> Path:
    folder = tmp_path / "ck"
    build_trainer(callbacks=[Checkpoint(folder, keep_last=5, keep_best=0)]).fit(epochs)
    return folder


def test_names_sort_by_training_position(tmp_path: Path) -> None:
    assert checkpoint_name(3, 12, 150) == "ckpt-e0003-b000012-s00000150.pt"
    assert parse_name("ckpt-e0003-b000012-s00000150.pt") == (3, 12, 150)
    assert parse_name("best.pt") is None
    for position in [(1, 0, 10), (0, 5, 5), (10, 0, 100), (1, 3, 13)]:
        (tmp_path / checkpoint_name(*position)).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert [parse_name(p.name) for p in list_checkpoints(tmp_path)] == [(0, 5, 5), (1, 0, 10), (1, 3, 13), (10, 0, 100)]


def test_layout_holds_everything_a_resume_needs(tmp_path: Path) -> None:
    payload = load_checkpoint(list_checkpoints(trained_folder(tmp_path, epochs=1))[-1])
    assert payload["format"] == ckpt.CHECKPOINT_FORMAT
    assert set(payload) >= {"model", "optimizer", "scheduler", "scaler", "progress", "best", "history"}
    assert set(payload) >= {"callbacks", "rng", "loader", "config", "fingerprint"}
    assert set(payload["rng"]["current"]) == {"python", "numpy", "torch", "cuda"}
    assert payload["progress"]["epoch"] == 1 and payload["progress"]["global_step"] == 6
    assert payload["loader"]["state"] == {"seed": 7, "epoch": 1, "batches_done": 0}
    assert not any(key.startswith(("module.", "_orig_mod.")) for key in payload["model"]["state_dict"])


def test_truncated_newest_checkpoint_is_reported_and_the_previous_one_used(tmp_path: Path) -> None:
    folder = trained_folder(tmp_path)
    *_, previous, newest = list_checkpoints(folder)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    messages: list[str] = []
    found = latest_checkpoint(folder, report=messages.append)
    path = found[0] if found else None
    assert path == previous
    assert len(messages) == 1 and newest.name in messages[0] and "unreadable" in messages[0]


def test_random_bytes_checkpoint_is_reported_and_the_previous_one_used(tmp_path: Path) -> None:
    folder = trained_folder(tmp_path)
    *_, previous, newest = list_checkpoints(folder)
    newest.write_bytes(random.Random(0).randbytes(newest.stat().st_size))
    messages: list[str] = []
    found = latest_checkpoint(folder, report=messages.append)
    assert found is not None and found[0] == previous
    assert newest.name in messages[0]


def test_resume_skips_a_garbled_newest_checkpoint_and_removes_it(tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "ck"
    reference = build_trainer(callbacks=[Checkpoint(tmp_path / "ref")])
    reference.fit(3)
    build_trainer(callbacks=[Checkpoint(folder, keep_last=5)]).fit(3)
    newest = list_checkpoints(folder)[-1]
    newest.write_bytes(b"\x00garbage" * 100)

    trainer = build_trainer(seed=8, callbacks=[Checkpoint(folder, keep_last=5)])
    trainer.fit(3, resume=True)

    out = capsys.readouterr().out
    assert newest.name in out and "using the previous checkpoint" in out
    assert trainer.epochs_run == 1  # epoch 3 redone from the epoch-2 checkpoint
    assert_same_weights(weights(trainer), weights(reference))
    assert load_checkpoint(newest)["progress"]["epoch"] == 3  # rewritten, readable


class _Exploit:
    """Unpickling this would run ``os.system`` (here: create a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_carrying_a_pickled_object_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    folder = trained_folder(tmp_path)
    *_, previous, newest = list_checkpoints(folder)
    payload = ckpt.pack_tensors(load_checkpoint(newest))
    payload["packed"]["tree"]["history"] = _Exploit(marker)  # otherwise a valid checkpoint
    torch.save(payload, newest)

    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(newest)
    message = str(refused.value)
    assert message.startswith(f"{newest}: refused to load this checkpoint: it names the global ")
    assert f"global {os.system.__module__}.system," in message  # posix.system: the forbidden global
    assert "\n" not in message and "\x1b" not in message and "weights_only" not in message
    messages: list[str] = []
    found = latest_checkpoint(folder, report=messages.append)
    assert found is not None and found[0] == previous and newest.name in messages[0]
    assert not marker.exists()
    torch.load(newest, weights_only=False)  # proof that the file does carry code: unsafe loading runs it
    assert marker.exists()


def test_every_unreadable_file_is_one_line_without_advice_to_drop_the_protection(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, {"format": ckpt.CHECKPOINT_FORMAT, "weights": torch.zeros(3)})
    truncated.write_bytes(truncated.read_bytes()[:100])
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": ckpt.CHECKPOINT_FORMAT, "packed": io.StringIO("x")}, foreign)
    for path in (truncated, folder, foreign):
        with pytest.raises(CheckpointError) as caught:
            ckpt.safe_torch_load(path, "checkpoint")
        message = str(caught.value)
        assert message.startswith(f"{path}: ")
        assert "\n" not in message and "\x1b" not in message and "weights_only" not in message
    with pytest.raises(CheckpointError, match=r"refused to load this checkpoint: it names the global _io\.StringIO"):
        load_checkpoint(foreign)


def test_non_checkpoint_and_missing_files_are_checkpoint_errors(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a trainflow checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_write_killed_before_the_rename_leaves_the_previous_file_and_a_stray_temporary(tmp_path: Path) -> None:
    path = tmp_path / checkpoint_name(0, 0, 0)
    save_checkpoint(path, {"format": ckpt.CHECKPOINT_FORMAT, "value": torch.ones(3)})

    class Killed(BaseException):
        pass

    def dies_midway(file: Any, packed: dict[str, Any]) -> None:
        file.write(b"the first bytes of a checkpoint")
        file.flush()
        raise Killed

    original = ckpt.write_data
    ckpt.write_data = dies_midway
    try:
        with pytest.raises(Killed):
            save_checkpoint(path, {"format": ckpt.CHECKPOINT_FORMAT, "value": torch.zeros(3)})
    finally:
        ckpt.write_data = original
    assert load_checkpoint(path)["value"].equal(torch.ones(3))
    # a SIGKILL would leave the temporary file behind; simulate one and clean it up
    stray = tmp_path / f".{path.name}.abc.tmp"
    stray.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [stray]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_packed_tensors_round_trip_exactly_with_storages_of_their_own() -> None:
    generator = torch.Generator().manual_seed(0)
    payload = {
        "format": ckpt.CHECKPOINT_FORMAT,
        "weights": {"w": torch.randn(4, 3, generator=generator), "b": torch.randn(3, generator=generator)},
        "step": torch.tensor(7.0),
        "rng": torch.randint(0, 255, (16,), dtype=torch.uint8, generator=generator),
        "strided": torch.arange(12.0).reshape(3, 4).t(),
        "empty": torch.zeros(0, 5),
        "list": [torch.tensor([1, 2], dtype=torch.int64), 3, "text", None],
        "tuple": (1.5, torch.ones(2, dtype=torch.float64)),
    }
    packed = ckpt.pack_tensors(payload)
    assert len(packed["packed"]["buffers"]) == 4  # one per dtype: float32, uint8, int64, float64
    buffer = io.BytesIO()
    torch.save(packed, buffer)
    buffer.seek(0)
    restored = ckpt.unpack_tensors(torch.load(buffer, weights_only=True))

    def check(a: Any, b: Any) -> None:
        if isinstance(a, torch.Tensor):
            assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
            assert b.untyped_storage().nbytes() == b.nbytes
        elif isinstance(a, dict):
            assert a.keys() == b.keys()
            for key in a:
                check(a[key], b[key])
        elif isinstance(a, (list, tuple)):
            assert type(a) is type(b) and len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                check(x, y)
        else:
            assert a == b

    check(payload, restored)


def test_background_write_holds_the_state_at_submit_time(tmp_path: Path) -> None:
    live = {"format": ckpt.CHECKPOINT_FORMAT, "w": torch.zeros(3), "nested": [{"m": torch.ones(2)}]}
    writer = CheckpointWriter(background=True)
    writer.submit(tmp_path / "a.pt", live)
    live["w"].add_(1)  # training goes on while the file is written
    live["nested"][0]["m"].mul_(5)
    writer.wait()
    saved = load_checkpoint(tmp_path / "a.pt")
    assert saved["w"].equal(torch.zeros(3)) and saved["nested"][0]["m"].equal(torch.ones(2))


@pytest.mark.parametrize("background", [True, False])
def test_writer_reports_a_failed_write(tmp_path: Path, background: bool) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    writer = CheckpointWriter(background=background)
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        writer.submit(blocker / "ckpt.pt", {"format": ckpt.CHECKPOINT_FORMAT})
        writer.wait()


def test_background_writer_writes_in_order(tmp_path: Path) -> None:
    writer = CheckpointWriter(background=True)
    done: list[int] = []
    for i in range(5):
        writer.submit(
            tmp_path / checkpoint_name(i, 0, i),
            {"format": ckpt.CHECKPOINT_FORMAT, "i": i},
            after=lambda i=i: done.append(i),
        )
    writer.wait()
    assert done == [0, 1, 2, 3, 4]
    assert [load_checkpoint(p)["i"] for p in list_checkpoints(tmp_path)] == [0, 1, 2, 3, 4]

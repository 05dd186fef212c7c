"""Run the train stage as a DDP job: build the torchrun command from the config and supervise it.

``train.distributed`` says how many processes (``nproc_per_node``: N, or ``auto`` = one per
GPU, else 1) on how many nodes (``nnodes``). When that makes more than one process and this
process is not already a torchrun worker, the train stage re-runs itself under torchrun
(``python -m torch.distributed.run``, torch's own elastic launcher)::

    python -m torch.distributed.run --nproc-per-node=2 --max-restarts=0 --standalone \\
        -m trainflow.cli train --params <resolved config> --root <project>

One node uses ``--standalone`` (a c10d rendezvous on a free local port); several nodes use
``--rdzv-backend=c10d --rdzv-endpoint=HOST:PORT --rdzv-id=<id>``, where the id is the
experiment id without the ``train.distributed`` section, so every node of one experiment meets
at the same rendezvous. torchrun restarts the whole worker group up to ``max_restarts`` times;
each restart resumes from the last checkpoint.

Supervision: torchrun runs in its own session, so a Ctrl-C reaches this launcher alone, which
then stops the job in order (SIGTERM to torchrun, which stops its workers), and after a grace
period kills whatever is left. Every process of the job carries a launch token in its
environment, so leftovers are found even after their parents are gone; torchrun itself dies
with this launcher (Linux's parent-death signal) and the workers with torchrun. The job's exit
code is the launcher's: 0 on success, torchrun's code on a failed worker (whose error and
traceback torchrun prints, recorded by ``@record`` on the worker's entry point).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import yaml

from trainflow.errors import TrainflowError
from trainflow.training.distributed import NODE_RANK_ENV, die_with_parent, under_torchrun

if TYPE_CHECKING:
    from trainflow.config import Config, DistributedConfig
    from trainflow.paths import ProjectPaths

LAUNCH_TOKEN_ENV = "TRAINFLOW_LAUNCH_TOKEN"
SHUTDOWN_TIMEOUT_S = 15  # torchrun's wait between SIGTERM and SIGKILL of its workers
GRACE_S = SHUTDOWN_TIMEOUT_S + 10.0  # this launcher's wait for torchrun before killing everything
# torchrun's c10d rendezvous shares its store with the workers by default, and then a restarted
# worker group can read the previous attempt's connection keys (pytorch/pytorch#135712): each
# attempt gets a store of its own instead.
RESTART_SAFE_ENV = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


class DistributedRunError(TrainflowError):
    """The torchrun job failed, timed out or was stopped; ``exit_code`` is the job's."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Stopped(Exception):
    """Raised in the launcher by SIGTERM/SIGHUP while it waits for the job."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# ---------------------------------------------------------------------------------------------
# The command


def resolve_nproc(value: int | str) -> int:
    """``auto`` -> the number of CUDA GPUs, or 1 without any; an int stays as it is."""
    if value == "auto":
        import torch

        return torch.cuda.device_count() or 1
    return int(value)


def world_size(settings: DistributedConfig) -> int:
    """Processes in the whole job: ``nproc_per_node x nnodes``."""
    return resolve_nproc(settings.nproc_per_node) * settings.nnodes


def needs_launch(settings: DistributedConfig) -> bool:
    """True when the settings ask for more than one process and this is not a torchrun worker."""
    return world_size(settings) > 1 and not under_torchrun()


def rendezvous_id(config: Config) -> str:
    """The experiment id with ``train.distributed`` at its defaults: the same on every node of a
    job even though each node has its own ``node_rank``."""
    from trainflow.config import DistributedConfig, experiment_id

    neutral = dataclasses.replace(config, train=dataclasses.replace(config.train, distributed=DistributedConfig()))
    return experiment_id(neutral)


def torchrun_command(
    settings: DistributedConfig,
    worker: Sequence[str],
    *,
    run_id: str,
    log_dir: str | Path | None = None,
    python: str = sys.executable,
) -> list[str]:
    """``python -m torch.distributed.run <options> <worker...>`` for ``settings``.

    ``worker`` is what each process runs, e.g. ``["-m", "trainflow.cli", "train", ...]`` or
    ``["script.py", "--flag"]``; ``run_id`` names the multi-node rendezvous.
    """
    command = [
        python,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={resolve_nproc(settings.nproc_per_node)}",
        f"--max-restarts={settings.max_restarts}",
        f"--shutdown-timeout={SHUTDOWN_TIMEOUT_S}",
    ]
    if settings.nnodes == 1:
        command.append("--standalone")
    else:
        command += [
            f"--nnodes={settings.nnodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={settings.rdzv_endpoint}",
            f"--rdzv-id={run_id}",
        ]
    if log_dir is not None:
        command.append(f"--log-dir={log_dir}")
    return [*command, *worker]


# ---------------------------------------------------------------------------------------------
# Supervision


def run_torchrun(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    grace_s: float = GRACE_S,
    cwd: str | Path | None = None,
) -> int:
    """Run ``command`` (a torchrun command line) to the end and return its exit code.

    ``env`` adds variables to this process's environment (and may override ``RESTART_SAFE_ENV``).
    On ``timeout_s`` (None: no limit), Ctrl-C, SIGTERM or SIGHUP the job is stopped (see the
    module docstring) and a :class:`DistributedRunError` (KeyboardInterrupt for Ctrl-C) is
    raised. However the job ends, no process of it is left running when this returns.
    """
    token = uuid.uuid4().hex
    full_env = {**os.environ, **RESTART_SAFE_ENV, **(env or {}), LAUNCH_TOKEN_ENV: token}
    process = subprocess.Popen(
        list(command),
        env=full_env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=lambda: die_with_parent(signal.SIGTERM),
    )
    try:
        with _signals_raise_stopped():
            return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(process, token, grace_s)
        raise DistributedRunError(f"distributed training did not finish within {timeout_s:g}s; stopped", 124) from None
    except _Stopped as stop:
        _stop(process, token, grace_s)
        raise DistributedRunError(f"distributed training stopped by {stop}", 128 + stop.signum) from None
    except BaseException:  # KeyboardInterrupt, or anything else: never leave the job behind
        _stop(process, token, grace_s)
        raise
    finally:
        kill_leftovers(token)


@contextlib.contextmanager
def _signals_raise_stopped() -> Iterator[None]:
    """While waiting: SIGTERM and SIGHUP raise :class:`_Stopped` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _stop(process: subprocess.Popen[Any], token: str, grace_s: float) -> None:
    """SIGTERM to torchrun (it stops its workers); after ``grace_s`` SIGKILL to everything left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        kill_leftovers(token)
        process.wait()


def processes_with_env(name: str, value: str) -> list[int]:
    """PIDs of the live processes (zombies left out) whose environment holds ``name=value``."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone, or not ours
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def kill_leftovers(token: str, rounds: int = 50) -> None:
    """SIGKILL every process of the job with ``token`` until none is left (children that are
    forked while their parent is being killed are caught by the next round)."""
    if not Path("/proc").is_dir():
        return
    for _ in range(rounds):
        pids = processes_with_env(LAUNCH_TOKEN_ENV, token)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# The train stage


def launch_train(config: Config, paths: ProjectPaths, *, resume: bool = True, timeout_s: float | None = None) -> None:
    """Run ``trainflow train`` with ``config`` on this node's share of the DDP job; raise
    :class:`DistributedRunError` with the job's exit code when it fails.

    The workers get the resolved config in a temporary params file, so they train exactly
    what this process resolved (overrides included), and the project root as an absolute path.
    """
    from trainflow.config import to_dict

    settings = config.train.distributed
    with tempfile.TemporaryDirectory(prefix="trainflow-ddp-") as scratch:
        params = Path(scratch) / "params.yaml"
        params.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
        worker = ["-m", "trainflow.cli", "train", "--params", str(params), "--root", str(paths.root.resolve())]
        if not resume:
            worker.append("--no-resume")
        command = torchrun_command(settings, worker, run_id=rendezvous_id(config), log_dir=Path(scratch) / "logs")
        size = world_size(settings)
        print(
            f"train: {size} processes ({resolve_nproc(settings.nproc_per_node)} per node x {settings.nnodes} "
            f"node(s)) under torchrun; batch_size {config.train.batch_size} per process, "
            f"{config.train.batch_size * size} in all",
            flush=True,
        )
        code = run_torchrun(command, env={NODE_RANK_ENV: str(settings.node_rank)}, timeout_s=timeout_s)
    if code != 0:
        raise DistributedRunError(
            f"distributed training failed (torchrun exit code {code}); the failing rank's error is shown above",
            code,
        )

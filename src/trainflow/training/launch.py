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

Supervision: torchrun runs in its own session, so a Ctrl-C reaches this launcher alone. The
first Ctrl-C is passed on to torchrun, which passes it on to its workers: each stops after the
running batch and the job saves that position, as a single process does. The launcher waits for
the job (a grace period at most), drops torchrun's own shutdown log and traceback, and fails
with the workers' one-line advice and exit code 130. A second Ctrl-C, SIGTERM or SIGHUP stops
the job at once (SIGTERM to torchrun, which stops its workers), and after a grace period kills
whatever is left. torchrun is started by the project's one process supervisor
(:class:`trainflow.training.supervisor.Supervised`): every process of the job carries its
launch token, so leftovers are found even after their parents are gone; torchrun itself dies
with this launcher (Linux's parent-death signal) and the workers with torchrun. The job's exit
code is the launcher's: 0 on success, torchrun's code on a failed worker (whose error and
traceback torchrun prints, recorded by ``@record`` on the worker's entry point).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import yaml

from trainflow.errors import TrainflowError
from trainflow.training.distributed import NODE_RANK_ENV, under_torchrun
from trainflow.training.supervisor import (  # the names are also this module's, as before
    LAUNCH_TOKEN_ENV,  # noqa: F401
    Supervised,
    kill_leftovers,
    processes_with_env,  # noqa: F401
)

if TYPE_CHECKING:
    from trainflow.config import Config, DistributedConfig
    from trainflow.paths import ProjectPaths

SHUTDOWN_TIMEOUT_S = 15  # torchrun's wait between SIGTERM and SIGKILL of its workers
GRACE_S = SHUTDOWN_TIMEOUT_S + 10.0  # this launcher's wait for torchrun before killing everything
# torchrun's c10d rendezvous shares its store with the workers by default, and then a restarted
# worker group can read the previous attempt's connection keys (pytorch/pytorch#135712): each
# attempt gets a store of its own instead.
RESTART_SAFE_ENV = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
# A line of torch.distributed's own log: "W1201 23:04:33.354000 18290 torch/distributed/...".
TORCH_LOG_LINE = re.compile(r"^[DIWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ torch/")


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
    job = Supervised(
        command, env={**os.environ, **RESTART_SAFE_ENV, **(env or {})}, cwd=cwd, stdin=None, stderr=subprocess.PIPE
    )
    process, token = job.process, job.token
    stderr = _StderrFilter()
    pump = threading.Thread(target=stderr.pump, args=(process,), daemon=True)
    pump.start()
    try:
        with _signals_raise_stopped(), _forward_first_interrupt(process, stderr):
            code = _wait(process, timeout_s, grace_s)
            if stderr.interrupted and code != 0:
                pump.join(timeout=5)
                advice = stderr.advice or "train: interrupted; run `trainflow train` again to continue"
                raise DistributedRunError(advice, 130)
            return code
    except subprocess.TimeoutExpired:
        if stderr.interrupted:  # the job did not stop within the grace period after Ctrl-C
            kill_leftovers(token)
            process.wait()
            raise DistributedRunError(
                f"distributed training interrupted; not stopped within {grace_s:g}s, killed", 130
            ) from None
        job.stop(grace_s)
        raise DistributedRunError(f"distributed training did not finish within {timeout_s:g}s; stopped", 124) from None
    except _Stopped as stop:
        job.stop(grace_s)
        raise DistributedRunError(f"distributed training stopped by {stop}", 128 + stop.signum) from None
    except BaseException:  # KeyboardInterrupt, or anything else: never leave the job behind
        job.stop(grace_s)
        raise
    finally:
        kill_leftovers(token)
        pump.join(timeout=5)


class _Interrupted(Exception):
    """Raised in the launcher by the first Ctrl-C, once it has been passed on to torchrun."""


def _wait(process: subprocess.Popen[bytes], timeout_s: float | None, grace_s: float) -> int:
    """Wait for ``process`` up to ``timeout_s``; after a Ctrl-C, up to ``grace_s`` from then."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        try:
            return process.wait(timeout=None if deadline is None else max(deadline - time.monotonic(), 0.0))
        except _Interrupted:
            deadline = time.monotonic() + grace_s


class _StderrFilter:
    """Copies torchrun's stderr (its workers' too) to this process's stderr, line by line.

    Once Ctrl-C was passed on (``interrupted``), torchrun's shutdown log and the traceback of
    its ``SignalException`` are noise: they are dropped, and so are the workers' ``error: ...``
    lines (one per rank, all alike); the first becomes ``advice``, the launcher's one line.
    """

    def __init__(self) -> None:
        self.interrupted = False
        self.advice: str | None = None
        self._held: list[str] = []  # a traceback, until its last line says whose it is

    def pump(self, process: subprocess.Popen[bytes]) -> None:
        """Read ``process.stderr`` to its end (run in a thread)."""
        assert process.stderr is not None
        for raw in iter(process.stderr.readline, b""):
            self._line(raw.decode(errors="replace"))
        self._release()
        process.stderr.close()

    def _line(self, line: str) -> None:
        if not self.interrupted:
            self._write(line)
        elif self._held:
            self._held.append(line)
            if line[:1] not in (" ", "\t", ""):  # the exception's own line ends the traceback
                if "SignalException" in line:
                    self._held.clear()
                else:
                    self._release()
        elif line.startswith("Traceback (most recent call last):"):
            self._held.append(line)
        elif TORCH_LOG_LINE.match(line):
            pass
        elif line.startswith("error: "):
            if self.advice is None:
                self.advice = line.removeprefix("error: ").strip()
            elif line.removeprefix("error: ").strip() != self.advice:
                self._write(line)
        else:
            self._write(line)

    def _release(self) -> None:
        for line in self._held:
            self._write(line)
        self._held.clear()

    @staticmethod
    def _write(line: str) -> None:
        sys.stderr.write(line)
        sys.stderr.flush()


@contextlib.contextmanager
def _forward_first_interrupt(process: subprocess.Popen[bytes], stderr: _StderrFilter) -> Iterator[None]:
    """While waiting: the first Ctrl-C goes to torchrun (which passes it on to its workers),
    a second one raises KeyboardInterrupt here (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stderr.interrupted:
            raise KeyboardInterrupt
        stderr.interrupted = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT)
        raise _Interrupted

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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

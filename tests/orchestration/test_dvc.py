"""DVC for the tasks: commands under the process supervisor, queries through DVC's Python API,
and the stage list read from dvc.yaml."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.dvc import (
    DvcQueryFailed,
    default_remote,
    locked_outs,
    metrics_diff,
    pipeline_stages,
    repro_stage,
    run_dvc,
    stage_metrics_files,
    stale_stages,
)
from tests.orchestration.projects import ROOT, commit, run, toy_project
from tests.orchestration.test_process import read_pids, running, wait_gone
from trainflow.training.supervisor import CommandFailed, CommandTimeout

HANG = """(trap '' TERM; echo $BASHPID >> pids; sleep 300) & (echo $BASHPID >> pids; sleep 300) & wait"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = toy_project(
        tmp_path / "toy",
        {
            "good": "echo good > good.out",
            "bad": "echo 'error: bad.key: must be positive' >&2; exit 2",
            "hang": HANG,
            "stdin": "cat > stdin.txt; echo ok > stdin.out",
            "stray": "(trap '' TERM; echo $BASHPID >> pids; exec sleep 300) & echo ok > stray.out",
        },
    )
    yield root
    if (root / "pids").is_file():
        assert wait_gone([int(pid) for pid in (root / "pids").read_text().split()]) == []


def test_repro_runs_a_changed_stage_and_skips_it_unchanged(project: Path) -> None:
    lines: list[str] = []
    first = repro_stage(project, "good", on_line=lines.append)
    assert first.ran and "Running stage 'good':" in lines
    assert first.outs == locked_outs(project, "good") and first.outs["good.out"]
    assert not any("git add dvc.lock" in line for line in lines)  # DVC's hint is said once, by the flow
    second = repro_stage(project, "good")
    assert not second.ran and second.outs == first.outs


def test_a_failed_stage_reports_the_user_error(project: Path) -> None:
    with pytest.raises(CommandFailed) as raised:
        run_dvc(["repro", "--single-item", "bad"], project)
    assert raised.value.user_error == "error: bad.key: must be positive"
    assert raised.value.returncode != 0
    assert run_dvc(["repro", "--single-item", "good"], project).returncode == 0


def test_a_timeout_stops_the_whole_tree(project: Path) -> None:
    with pytest.raises(CommandTimeout):
        run_dvc(["repro", "--single-item", "hang"], project, timeout_s=3.0)
    assert wait_gone(read_pids(project / "pids", 2)) == []
    assert run_dvc(["repro", "--single-item", "good"], project).returncode == 0


def test_an_error_in_the_caller_stops_the_tree(project: Path) -> None:
    class Cancelled(Exception):
        pass

    def cancel(signum: int, frame: object) -> None:
        raise Cancelled

    previous = signal.signal(signal.SIGALRM, cancel)
    signal.setitimer(signal.ITIMER_REAL, 3.0)
    try:
        with pytest.raises(Cancelled):
            run_dvc(["repro", "--single-item", "hang"], project)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert wait_gone(read_pids(project / "pids", 2)) == []


def test_stages_read_nothing_from_stdin(project: Path) -> None:
    run_dvc(["repro", "--single-item", "stdin"], project)
    assert (project / "stdin.txt").read_text() == ""


def test_what_a_stage_leaves_behind_is_stopped_with_the_command(project: Path) -> None:
    run_dvc(["repro", "--single-item", "stray"], project)
    pids = read_pids(project / "pids", 1)
    assert pids and wait_gone(pids) == []
    assert not any(running(pid) for pid in pids)


def test_queries_go_through_dvcs_api(project: Path) -> None:
    assert set(stale_stages(project)) == {"good", "bad", "hang", "stdin", "stray"}  # nothing ran yet
    repro_stage(project, "good")
    assert "good" not in stale_stages(project)
    (project / "good.sh").write_text("echo changed > good.out\n")
    assert "good" in stale_stages(project)
    assert default_remote(project) is None
    run(["dvc", "remote", "add", "-d", "store", str(project / "store")], project)
    assert default_remote(project) == "store"


def test_metrics_diff_against_a_revision(tmp_path: Path) -> None:
    root = toy_project(tmp_path / "toy", {"m": "echo '{\"acc\": 0.5}' > m.out"})
    (root / "dvc.yaml").write_text(
        "stages:\n  m:\n    cmd: bash m.sh\n    deps: [m.sh]\n    metrics: [{m.json: {cache: false}}]\n"
    )
    (root / "m.sh").write_text("""echo '{"acc": 0.5}' > m.json\n""")
    run(["dvc", "repro"], root)
    commit(root, "accepted")
    (root / "m.sh").write_text("""echo '{"acc": 0.75}' > m.json\n""")
    run(["dvc", "repro"], root)
    assert metrics_diff(root, "HEAD") == {"m.json": {"acc": {"old": 0.5, "new": 0.75, "diff": 0.25}}}
    assert stage_metrics_files(root, "m") == ["m.json"]
    with pytest.raises(DvcQueryFailed, match="metrics diff --all no-such-rev"):
        metrics_diff(root, "no-such-rev")


def test_the_stage_list_is_dvc_yamls_in_dag_order(tmp_path: Path) -> None:
    assert pipeline_stages(ROOT) == ("prepare", "fit_encoder", "train", "evaluate", "package")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  late:\n    cmd: c\n    deps: [mid.out]\n    outs: [late.out]\n"
        "  early:\n    cmd: c\n    outs: [{early.out: {persist: true}}]\n"
        "  mid:\n    cmd: c\n    deps: [early.out/part]\n    outs: [mid.out]\n"
        "  apart:\n    cmd: c\n"
    )
    assert pipeline_stages(tmp_path) == ("early", "mid", "late", "apart")

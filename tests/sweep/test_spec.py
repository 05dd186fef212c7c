"""The sweep spec: bad specs fail with one line naming the key; proposals are reproducible;
--apply-best's line-wise edit keeps params.yaml's comments and layout. Fast: no trial runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from trainflow.cli import main
from trainflow.sweep.apply_best import set_values
from trainflow.sweep.spec import parse_spec
from trainflow.sweep.study import random_proposals

REPO = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((REPO / "sweep.yaml").read_text())


def _run_spec(tmp_path: Path, spec: dict, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    code = main(["sweep", "--root", str(tmp_path), "--spec", str(tmp_path / "sweep.yaml")])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"space": {"train.optimizer.lrr": {"type": "uniform", "low": 0.1, "high": 0.2}}}, "train.optimizer.lrr"),
        ({"space": {"train.optimizer.lr": {"type": "loguniform", "low": 0, "high": 1}}}, "train.optimizer.lr"),
        ({"space": {"model.hidden_sizes": {"type": "choice", "values": [[64], [0]]}}}, "model.hidden_sizes"),
        ({"space": {"train.max_epochs": {"type": "range", "low": 1, "high": 2}}}, "train.max_epochs"),
        ({"search": "grid"}, "sweep.space.train.optimizer.lr"),
        ({"search": "bayes"}, "sweep.search"),
        ({"n_trials": 0}, "sweep.n_trials"),
        ({"mode": "up"}, "sweep.mode"),
        ({"pruner": {"name": "hyperband"}}, "sweep.pruner.name"),
        ({"fixed": {"train.max_epochs": -1}}, "sweep.fixed.train.max_epochs"),
        ({"parallel": 2}, "sweep.parallel"),
    ],
)
def test_bad_spec_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, named: str
) -> None:
    code, err = _run_spec(tmp_path, {**SPEC, **change}, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert named in err
    assert not (tmp_path / ".sweeps").exists()  # refused before any work


def test_grid_needs_enough_points_and_counts_them() -> None:
    space = {
        "train.optimizer.lr": {"type": "choice", "values": [0.1, 0.2]},
        "train.max_epochs": {"type": "int", "low": 1, "high": 3},
    }
    assert parse_spec({"search": "grid", "space": space}).trials == 6
    with pytest.raises(Exception, match=r"n_trials: 7 is more than the grid's 6 points"):
        parse_spec({"search": "grid", "n_trials": 7, "space": space})


def test_random_proposals_are_reproducible() -> None:
    spec = parse_spec(SPEC)
    first, again = random_proposals(spec), random_proposals(spec)
    other = random_proposals(parse_spec({**SPEC, "seed": SPEC["seed"] + 1}))
    assert first == again and len(first) == SPEC["n_trials"]
    assert len({str(p) for p in first}) == len(first)  # distinct trials
    assert first != other


def test_apply_best_edit_keeps_comments_and_layout() -> None:
    text = (REPO / "params.yaml").read_text()
    new = set_values(text, {"train.optimizer.lr": 0.0025, "model.hidden_sizes": [64], "train.max_epochs": 3})
    old_lines, new_lines = text.splitlines(), new.splitlines()
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == 3  # only the three value lines
    for before, after in changed:
        if "#" in before:
            assert after.index("#") == before.index("#") and after.split("#", 1)[1] == before.split("#", 1)[1]
    data = yaml.safe_load(new)
    assert data["train"]["optimizer"]["lr"] == 0.0025 and data["model"]["hidden_sizes"] == [64]
    assert data["train"]["max_epochs"] == 3 and data["data"] == yaml.safe_load(text)["data"]
    with pytest.raises(Exception, match=r"train\.grad_accum_steps is not written out"):
        set_values(text, {"train.grad_accum_steps": 2})


def test_the_forecasting_example_spec_is_checked_with_its_fixed_dataset(tmp_path: Path) -> None:
    """examples/sweep_co2.yaml searches window models, valid only with its fixed dataset.name=co2;
    without that fixed key the same space is refused, naming the key."""
    from trainflow.errors import ConfigError
    from trainflow.sweep.spec import check_keys

    spec = yaml.safe_load((REPO / "examples" / "sweep_co2.yaml").read_text())
    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    check_keys(parse_spec(spec), tmp_path)
    del spec["fixed"]["dataset.name"]
    with pytest.raises(ConfigError, match=r"sweep\.space\.model\.name: .*window \(forecasting\) model"):
        check_keys(parse_spec(spec), tmp_path)


def test_the_best_values_keep_the_fixed_dataset_they_were_best_on() -> None:
    """--apply-best of a forecasting sweep writes dataset.name with the model (a window model
    alone would not fit the digits params); the fixed epoch budget is left out."""
    import optuna

    from trainflow.sweep.report import best_values
    from trainflow.sweep.study import distributions

    spec = parse_spec(yaml.safe_load((REPO / "examples" / "sweep_co2.yaml").read_text()))
    study = optuna.create_study(direction="minimize")
    for value, model in ((0.4, "window_mlp"), (0.3, "linear_window")):
        params = {"model.name": model, "train.optimizer.lr": 0.001}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions(spec), value=value))
    assert best_values(spec, study) == {
        "dataset.name": "co2",
        "model.name": "linear_window",
        "train.optimizer.lr": 0.001,
    }

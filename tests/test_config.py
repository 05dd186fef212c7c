"""Config: defaults < params.yaml < overrides, validation errors that name the key, round trips."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from trainflow.config import (
    Config,
    experiment_id,
    flatten,
    load_config,
    parse_override,
    resolve,
    to_dict,
    training_fingerprint,
    unflatten,
)
from trainflow.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_are_a_valid_experiment() -> None:
    config = Config()
    assert config.seed == 42
    assert config.model.name == "mlp"
    assert config.train.optimizer.name == "adam"
    assert config.train.optimizer.lr == 1e-3
    assert resolve({}) == config


def test_repo_params_file_loads() -> None:
    config = load_config(REPO / "params.yaml")
    assert config.dataset.name == "digits"
    assert config.train.max_epochs >= 1


def test_precedence_defaults_then_file_then_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  max_epochs: 7\n  optimizer:\n    name: sgd\n    lr: 0.5\n")
    from_file = load_config(path)
    assert from_file.train.max_epochs == 7  # file beats default (30)
    assert from_file.train.batch_size == 32  # default where the file is silent
    assert from_file.train.optimizer.momentum == 0.9  # the sgd config's own default
    overridden = load_config(path, ["train.max_epochs=3", "train.optimizer.lr=0.25", "seed=1"])
    assert (overridden.train.max_epochs, overridden.train.optimizer.lr, overridden.seed) == (3, 0.25, 1)


def test_override_can_switch_a_component(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "seed: 1\n"), ["model.name=cnn", "model.channels=[4, 8]"])
    assert config.model.name == "cnn"
    assert config.model.channels == (4, 8)


def test_unknown_key_names_the_dotted_key_and_closest(tmp_path: Path) -> None:
    message = error_of(tmp_path, "train:\n  max_epoch: 3\n")
    assert "train.max_epoch: unknown key" in message
    assert "train.max_epochs" in message


def test_unknown_key_inside_a_component(tmp_path: Path) -> None:
    message = error_of(tmp_path, "model:\n  name: mlp\n  hiden_sizes: [3]\n")
    assert "model.hiden_sizes: unknown key" in message
    assert "hidden_sizes" in message


def test_wrong_type(tmp_path: Path) -> None:
    message = error_of(tmp_path, "train:\n  max_epochs: ten\n")
    assert message.startswith(f"{tmp_path / 'params.yaml'}: train.max_epochs:")
    assert "'ten'" in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train:\n  optimizer:\n    lr: 0\n", "train.optimizer.lr"),
        ("train:\n  optimizer:\n    lr: -0.1\n", "train.optimizer.lr"),
        ("train:\n  early_stopping:\n    patience: -1\n", "train.early_stopping.patience"),
        ("data:\n  val_fraction: 0.5\n  test_fraction: 0.5\n", "data"),
        ("data:\n  val_fraction: 1.5\n", "data.val_fraction"),
        ("train:\n  batch_size: 0\n", "train.batch_size"),
        ("train:\n  precision: fp8\n", "train.precision"),
        ("upload:\n  target: ftp://x\n", "upload"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    assert f": {key}:" in error_of(tmp_path, text)


def test_fractions_must_leave_a_train_split(tmp_path: Path) -> None:
    assert "leave a train split" in error_of(tmp_path, "data:\n  val_fraction: 0.5\n  test_fraction: 0.5\n")


def test_unknown_registry_name_lists_known_and_closest(tmp_path: Path) -> None:
    message = error_of(tmp_path, "model:\n  name: mpl\n")
    assert "model.name: unknown name 'mpl'" in message
    assert "did you mean 'mlp'" in message
    assert "cnn" in message


def test_unknown_metric_and_optimizer_names(tmp_path: Path) -> None:
    assert "did you mean 'accuracy'" in error_of(tmp_path, "metrics: [acuracy]\n")
    assert "train.optimizer.name: unknown name 'adm'" in error_of(tmp_path, "train:\n  optimizer:\n    name: adm\n")


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "seed: 1\ntrain: [unclosed\n")
    assert "params.yaml" in message
    assert "line" in message
    assert "malformed YAML" in message


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    assert "top level must be a mapping" in error_of(tmp_path, "- a\n- b\n")


def test_bad_override_syntax(tmp_path: Path) -> None:
    assert "expected KEY=VALUE" in error_of(tmp_path, "seed: 1\n", ("train.max_epochs",))
    assert "seed: is a value, not a section" in error_of(tmp_path, "seed: 1\n", ("seed.x=1",))


def test_override_values_are_yaml() -> None:
    assert parse_override("a.b=0.003") == ("a.b", 0.003)
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=hello") == ("a", "hello")


def test_nested_and_flat_round_trip() -> None:
    nested = to_dict(Config())
    flat = flatten(nested)
    assert flat["train.optimizer.lr"] == 1e-3
    assert unflatten(flat) == nested


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "model:\n  name: cnn\n"), ["train.scheduler.name=cosine"])
    assert resolve(to_dict(config)) == config


def test_switching_component_ignores_the_other_components_keys_but_not_typos() -> None:
    # params.yaml keeps mlp's hidden_sizes; selecting cnn ignores them instead of failing.
    config = load_config(REPO / "params.yaml", ["model.name=cnn"])
    assert config.model.name == "cnn" and not hasattr(config.model, "hidden_sizes")
    with pytest.raises(ConfigError, match=r"model\.hiden_sizes: unknown key.*valid keys here: name, channels"):
        load_config(REPO / "params.yaml", ["model.name=cnn", "model.hiden_sizes=[3]"])


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().seed = 3  # type: ignore[misc]


def test_experiment_id_is_stable_and_tracks_what_is_computed(tmp_path: Path) -> None:
    base = load_config(write(tmp_path, "seed: 1\n"))
    assert experiment_id(base) == experiment_id(load_config(write(tmp_path, "seed: 1\n")))
    assert experiment_id(base) != experiment_id(load_config(write(tmp_path, "seed: 2\n")))
    moved = load_config(write(tmp_path, "seed: 1\nupload:\n  target: s3://bucket/x\n"))
    assert experiment_id(moved) == experiment_id(base)


def test_training_fingerprint_allows_raising_epochs_and_patience(tmp_path: Path) -> None:
    base = load_config(write(tmp_path, "seed: 1\n"))
    longer = load_config(write(tmp_path, "seed: 1\n"), ["train.max_epochs=99", "train.early_stopping.patience=9"])
    assert training_fingerprint(longer) == training_fingerprint(base)
    scaled_out = load_config(write(tmp_path, "seed: 1\n"), ["train.distributed.nproc_per_node=2"])
    assert training_fingerprint(scaled_out) == training_fingerprint(base)  # resume across world sizes
    changed = load_config(write(tmp_path, "seed: 1\n"), ["train.optimizer.lr=0.1"])
    assert training_fingerprint(changed) != training_fingerprint(base)


def test_imports_register_user_components(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = tmp_path / "my_models.py"
    plugin.write_text(
        textwrap.dedent(
            """
            from pydantic.dataclasses import dataclass
            from torch import nn
            from trainflow import registry
            from trainflow.config import STRICT, ComponentConfig

            @dataclass(frozen=True, config=STRICT)
            class LinearConfig(ComponentConfig):
                name: str = "my_linear"
                bias: bool = True

            @registry.models.register("my_linear", LinearConfig)
            def my_linear(config, in_features, num_outputs, image_shape=None):
                return nn.Linear(in_features, num_outputs, bias=config.bias)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = load_config(write(tmp_path, "imports: [my_models]\nmodel:\n  name: my_linear\n  bias: false\n"))
    assert config.model.name == "my_linear"
    assert config.model.bias is False
    assert "cannot import 'no_such_module'" in error_of(tmp_path, "imports: [no_such_module]\n")


def test_errors_name_the_override_that_set_the_key_and_the_file_for_the_rest(tmp_path: Path) -> None:
    params = "train:\n  max_epochs: 0\n  optimizer:\n    lr: 0.01\n"
    from_file = error_of(tmp_path, params)
    assert from_file.startswith(f"{tmp_path / 'params.yaml'}: train.max_epochs: ")
    both = error_of(tmp_path, params, ("train.batch_size=0",))
    assert both.startswith(f"{tmp_path / 'params.yaml'}: train.max_epochs: ")
    assert "; override train.batch_size=0: train.batch_size: " in both
    component = error_of(tmp_path, "seed: 1\n", ("train.optimizer.lr=-1",))
    assert component.startswith("override train.optimizer.lr=-1: train.optimizer.lr: ")
    unknown = error_of(tmp_path, "seed: 1\n", ("model.name=mpl",))
    assert unknown.startswith("override model.name=mpl: model.name: unknown name 'mpl'")
    section = error_of(tmp_path, "seed: 1\n", ("data.val_fraction=0.5", "data.test_fraction=0.5"))
    assert section.startswith("override data.test_fraction=0.5: data: ") and "leave a train split" in section


def test_a_loss_metric_or_monitor_that_does_not_fit_the_run_is_refused(tmp_path: Path) -> None:
    regression = "dataset:\n  name: csv\n  path: t.csv\n  task: regression\n"
    assert "loss.name: 'cross_entropy' is a classification loss" in error_of(
        tmp_path, regression + "loss: cross_entropy\n"
    )
    assert "metrics: 'accuracy' is a classification metric" in error_of(tmp_path, regression + "metrics: [accuracy]\n")
    # the checkpoint monitor's default (val/accuracy, max) is allowed: the train stage falls back to val/loss
    fallback = {"monitor": "val/accuracy", "mode": "max"}
    resolve({"dataset": {"name": "csv", "path": "t.csv", "task": "regression"}, "train": {"checkpoint": fallback}})
    monitor = error_of(tmp_path, "seed: 1\n", ("train.checkpoint.monitor=val/mae",))
    assert monitor.startswith("override train.checkpoint.monitor=val/mae: train.checkpoint.monitor: 'val/mae' is not")
    resolve({"dataset": {"name": "csv", "path": "t.csv", "task": "regression"}, "loss": "huber"})  # fits
    assert "model.name: cnn needs a data set of images" in error_of(
        tmp_path, "dataset:\n  name: parquet\n  path: t.parquet\nmodel: cnn\n"
    )
    assert resolve({"model": "cnn"}).model.name == "cnn"  # digits are images

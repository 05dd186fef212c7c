"""Encoders: fit/encode/decode, constant features, exact JSON round trip, clear load errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainflow.config import resolve
from trainflow.encoders import (
    IdentityEncoder,
    IdentityEncoderConfig,
    MinMaxEncoder,
    MinMaxEncoderConfig,
    StandardEncoder,
    StandardEncoderConfig,
    build_encoder,
    fit_encoder,
    load_encoder,
    save_encoder,
)
from trainflow.errors import ConfigError, DataError


def features(rows: int = 50, seed: int = 0) -> np.ndarray:
    """Three features on different scales, the last one constant."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(5, 2, rows), rng.uniform(-100, 300, rows), np.full(rows, 7.0)])


def test_standard_encoder_gives_zero_mean_unit_std_and_decodes_back() -> None:
    x = features()
    encoder = StandardEncoder(StandardEncoderConfig(name="standard")).fit(x)
    encoded = encoder.encode(x)
    assert encoded.dtype == np.float32
    np.testing.assert_allclose(encoded[:, :2].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(encoded[:, :2].std(axis=0), 1, atol=1e-6)
    np.testing.assert_array_equal(encoded[:, 2], 0)  # constant feature: std 0 is taken as 1
    assert encoder.state is not None and encoder.state["std"][2] == 1.0
    decoded = encoder.decode(encoded)
    assert decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, x, rtol=1e-5, atol=1e-4)


def test_minmax_encoder_maps_the_fit_data_to_unit_range() -> None:
    x = features()
    encoder = MinMaxEncoder(MinMaxEncoderConfig(name="minmax")).fit(x)
    encoded = encoder.encode(x)
    np.testing.assert_array_equal(encoded[:, :2].min(axis=0), 0)
    np.testing.assert_allclose(encoded[:, :2].max(axis=0), 1, atol=1e-7)
    np.testing.assert_array_equal(encoded[:, 2], 0)  # range 0 is taken as 1
    np.testing.assert_allclose(encoder.decode(encoded), x, rtol=1e-5, atol=1e-4)


def test_identity_encoder_only_casts() -> None:
    x = features()
    encoder = IdentityEncoder(IdentityEncoderConfig(name="identity")).fit(x)
    np.testing.assert_array_equal(encoder.encode(x), x.astype(np.float32))
    np.testing.assert_array_equal(encoder.decode(encoder.encode(x)), x.astype(np.float32))


def test_state_comes_from_the_fit_data_only() -> None:
    train, other = features(seed=1), features(seed=2) + 10
    encoder = StandardEncoder(StandardEncoderConfig(name="standard")).fit(train)
    assert encoder.state is not None
    np.testing.assert_array_equal(encoder.state["mean"], train.mean(axis=0))
    encoded = encoder.encode(other)  # other data is encoded with the train statistics
    np.testing.assert_allclose(encoded[:, 0], (other[:, 0] - train[:, 0].mean()) / train[:, 0].std(), rtol=1e-5)


@pytest.mark.parametrize("name", ["standard", "minmax", "identity"])
def test_save_and_load_round_trip_exactly(name: str, tmp_path: Path) -> None:
    x = features(rows=37, seed=3) * np.pi  # floats with long decimal expansions
    encoder = fit_encoder(resolve({"encoder": {"name": name}}), x)
    path = tmp_path / "encoders" / "encoder.json"
    save_encoder(encoder, path)
    data = json.loads(path.read_text())  # plain JSON, no pickle
    assert (data["format"], data["name"], data["num_features"]) == ("trainflow.encoder", name, 3)
    loaded = load_encoder(path)
    assert type(loaded) is type(encoder) and loaded.config == encoder.config
    assert loaded.state is not None and encoder.state is not None
    for key, value in encoder.state.items():
        assert loaded.state[key].tobytes() == value.tobytes()
    assert loaded.encode(x).tobytes() == encoder.encode(x).tobytes()
    assert [p.name for p in path.parent.iterdir()] == ["encoder.json"]  # no temp file left behind


def test_fit_encoder_uses_the_configured_encoder() -> None:
    assert isinstance(fit_encoder(resolve({"encoder": "minmax"}), features()), MinMaxEncoder)
    assert isinstance(fit_encoder(resolve({}), features()), StandardEncoder)
    with pytest.raises(ConfigError, match=r"encoder\.name: unknown name 'zscore'"):
        resolve({"encoder": {"name": "zscore"}})


def test_fit_rejects_data_that_cannot_be_fitted() -> None:
    encoder = build_encoder(StandardEncoderConfig(name="standard"))
    with pytest.raises(DataError, match="cannot fit on 0 rows"):
        encoder.fit(np.empty((0, 3)))
    with pytest.raises(DataError, match="NaN or inf"):
        encoder.fit(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="2-D"):
        encoder.fit(np.zeros(3))


def test_encode_checks_the_feature_count_and_the_fit() -> None:
    encoder = StandardEncoder(StandardEncoderConfig(name="standard"))
    with pytest.raises(RuntimeError, match="before fit"):
        encoder.encode(features())
    encoder.fit(features())
    with pytest.raises(DataError, match="fitted on 3 features, got 2"):
        encoder.encode(features()[:, :2])


def test_loading_a_missing_file_says_to_run_fit_encoder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"encoder.json: not found; run the fit-encoder stage first"):
        load_encoder(tmp_path / "encoder.json")


def _saved(tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "encoder.json"
    save_encoder(StandardEncoder(StandardEncoderConfig(name="standard")).fit(features()), path)
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "not a trainflow encoder file"),
        ({"version": 99}, "encoder file version 99"),
        # other modules a test run imported (forecasting) may have declared more encoders first
        ({"name": "zscore"}, "unknown encoder 'zscore'; known: (.+, )?identity, minmax, standard"),
        ({"num_features": 0}, "'num_features' must be a positive integer"),
        ({"state": {"mean": [0.0, 0.0, 0.0]}}, "'state' must hold exactly mean, std"),
        ({"state": {"mean": [0.0, 0.0], "std": [1.0, 1.0, 1.0]}}, "state.mean must be a list of 3 numbers"),
        ({"state": {"mean": [0.0, "a", 0.0], "std": [1.0, 1.0, 1.0]}}, "state.mean must be a list of 3 numbers"),
        ({"config": {"name": "standard", "eps": 1}}, "invalid config"),
        ({"config": {"name": "minmax"}}, "'config' must be a mapping whose name is 'standard'"),
    ],
)
def test_a_malformed_encoder_file_is_a_data_error(tmp_path: Path, change: dict, message: str) -> None:
    path, data = _saved(tmp_path)
    path.write_text(json.dumps({**data, **change}))
    with pytest.raises(DataError, match=message):
        load_encoder(path)


def test_from_dict_rebuilds_only_its_own_class(tmp_path: Path) -> None:
    _, data = _saved(tmp_path)
    assert isinstance(StandardEncoder.from_dict(data), StandardEncoder)
    with pytest.raises(DataError, match="'standard' is registered to StandardEncoder, not MinMaxEncoder"):
        MinMaxEncoder.from_dict(data)


def test_a_non_finite_state_is_a_data_error(tmp_path: Path) -> None:
    path, data = _saved(tmp_path)
    path.write_text(json.dumps({**data, "state": {"mean": [0.0, float("nan"), 0.0], "std": [1.0, 1.0, 1.0]}}))
    with pytest.raises(DataError, match=r"state\.mean holds NaN or inf"):
        load_encoder(path)


def test_a_file_that_is_not_json_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "encoder.json"
    path.write_bytes(b"\x80\x04\x95 pickle bytes")
    with pytest.raises(DataError, match=r"encoder.json: unreadable encoder file"):
        load_encoder(path)

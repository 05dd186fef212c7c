"""LocalStore and S3Store (against moto's server): the operations uploads are built from."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.fixtures.s3 import s3_client
from trainflow.errors import StorageError
from trainflow.storage.manifest import sha256_file
from trainflow.storage.s3_config import MIB, S3Settings, make_client, transfer_config
from trainflow.storage.stores import ArtifactStore, LocalStore, S3Store, open_store


def _file(path: Path, data: bytes) -> tuple[Path, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


# --- open_store ---------------------------------------------------------------------------------


def test_open_store_file_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("file://uploads/team")
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "uploads" / "team"
    assert store.url("a/b.json") == (tmp_path / "uploads" / "team" / "a" / "b.json").as_uri()


def test_open_store_file_absolute(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/up")
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "up"


def test_open_store_s3_bucket_and_prefix() -> None:
    store = open_store("s3://my-bucket/team/runs/")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("my-bucket", "team/runs")
    assert store.url("exp/manifest.json") == "s3://my-bucket/team/runs/exp/manifest.json"
    assert open_store("s3://my-bucket").url("k") == "s3://my-bucket/k"
    assert isinstance(store, ArtifactStore)


@pytest.mark.parametrize(
    ("target", "expected"),
    [("s3://", "missing bucket"), ("file://", "missing folder"), ("gs://b/p", "use s3://bucket/prefix or file://")],
)
def test_open_store_rejects_bad_targets(target: str, expected: str) -> None:
    with pytest.raises(StorageError, match=expected) as error:
        open_store(target)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "../up", "a/./b", "a\\b", "a/"])
def test_keys_must_be_clean_relative_paths(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        LocalStore(tmp_path).stat(key)


# --- LocalStore ---------------------------------------------------------------------------------


def test_local_store_round_trip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.check()
    source, sha = _file(tmp_path / "src" / "a.bin", b"hello" * 100)
    assert store.stat("exp/a.bin") is None
    store.put_file(source, "exp/a.bin", sha)
    assert store.stat("exp/a.bin") == (500, sha)
    store.get_file("exp/a.bin", tmp_path / "back" / "a.bin")
    assert (tmp_path / "back" / "a.bin").read_bytes() == b"hello" * 100
    store.put_file(source, "exp/sub/b.bin", sha)
    store.put_file(source, "other/c.bin", sha)
    (tmp_path / "store" / "exp" / ".a.bin.x1y2.tmp").write_bytes(b"half written")
    assert store.list("exp/") == ["exp/a.bin", "exp/sub/b.bin"]
    assert store.list() == ["exp/a.bin", "exp/sub/b.bin", "other/c.bin"]
    assert store.list("nothing/") == []
    store.delete("exp/a.bin")
    store.delete("exp/a.bin")  # deleting what is not there is fine
    assert store.stat("exp/a.bin") is None


def test_local_store_rejects_a_copy_that_does_not_match(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    source, _ = _file(tmp_path / "a.bin", b"content")
    with pytest.raises(StorageError, match="does not match"):
        store.put_file(source, "a.bin", "0" * 64)
    assert store.stat("a.bin") is None
    assert source.read_bytes() == b"content"


def test_local_store_errors_are_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot create the folder") as error:
        LocalStore(blocker / "store").check()
    assert "\n" not in str(error.value)
    with pytest.raises(StorageError, match="object not found"):
        LocalStore(tmp_path).get_file("missing.bin", tmp_path / "out.bin")


# --- S3Store ------------------------------------------------------------------------------------


def test_s3_store_round_trip(s3_bucket: str, tmp_path: Path) -> None:
    store = S3Store(s3_bucket, "team/runs")
    store.check()
    source, sha = _file(tmp_path / "metrics.json", b'{"accuracy": 0.9}')
    assert store.stat("exp/metrics.json") is None
    store.put_file(source, "exp/metrics.json", sha)
    assert store.stat("exp/metrics.json") == (source.stat().st_size, sha)

    head = s3_client(os.environ["AWS_ENDPOINT_URL"]).head_object(
        Bucket=s3_bucket, Key="team/runs/exp/metrics.json", ChecksumMode="ENABLED"
    )
    assert head["Metadata"] == {"sha256": sha}
    assert head["ContentType"] == "application/json"
    assert head["ChecksumSHA256"]

    store.get_file("exp/metrics.json", tmp_path / "back.json")
    assert sha256_file(tmp_path / "back.json") == sha
    store.put_file(source, "exp/sub/x.json", sha)
    assert store.list("exp/") == ["exp/metrics.json", "exp/sub/x.json"]
    assert store.list() == ["exp/metrics.json", "exp/sub/x.json"]
    store.delete("exp/metrics.json")
    assert store.stat("exp/metrics.json") is None
    with pytest.raises(StorageError, match="object not found"):
        store.get_file("exp/metrics.json", tmp_path / "gone.json")
    assert not (tmp_path / "gone.json").exists()


def test_s3_stat_of_a_foreign_object_has_no_sha256(s3_bucket: str) -> None:
    s3_client(os.environ["AWS_ENDPOINT_URL"]).put_object(Bucket=s3_bucket, Key="p/x.bin", Body=b"12345")
    assert S3Store(s3_bucket, "p").stat("x.bin") == (5, None)


def test_s3_put_file_rejects_and_removes_a_mismatching_object(s3_bucket: str, tmp_path: Path) -> None:
    source, _ = _file(tmp_path / "a.bin", b"the real content")
    store = S3Store(s3_bucket)
    with pytest.raises(StorageError, match=r"does not match .* after upload") as error:
        store.put_file(source, "a.bin", hashlib.sha256(b"something else").hexdigest())
    assert "\n" not in str(error.value)
    assert store.stat("a.bin") is None


def test_s3_multipart_upload_is_verified(s3_bucket: str, tmp_path: Path) -> None:
    data = os.urandom(6 * MIB + 123)  # two parts: S3's smallest part is 5 MiB
    source, sha = _file(tmp_path / "big.pt", data)
    store = S3Store(s3_bucket, "m", settings=S3Settings(multipart_threshold=1 * MIB, multipart_chunksize=5 * MIB))
    store.put_file(source, "big.pt", sha)
    client = s3_client(os.environ["AWS_ENDPOINT_URL"])
    assert client.head_object(Bucket=s3_bucket, Key="m/big.pt", PartNumber=1)["PartsCount"] == 2
    assert store.stat("big.pt") == (len(data), sha)
    store.get_file("big.pt", tmp_path / "back.pt")
    assert sha256_file(tmp_path / "back.pt") == sha


def test_s3_small_files_are_single_part(s3_bucket: str, tmp_path: Path) -> None:
    source, sha = _file(tmp_path / "small.bin", os.urandom(2 * MIB))
    S3Store(s3_bucket, settings=S3Settings(multipart_threshold=8 * MIB)).put_file(source, "small.bin", sha)
    head = s3_client(os.environ["AWS_ENDPOINT_URL"]).head_object(Bucket=s3_bucket, Key="small.bin", PartNumber=1)
    assert not head.get("PartsCount")


# --- S3 settings --------------------------------------------------------------------------------


def test_settings_from_env() -> None:
    settings = S3Settings.from_env(
        {
            "TRAINFLOW_S3_CONNECT_TIMEOUT": "1.5",
            "TRAINFLOW_S3_READ_TIMEOUT": "7",
            "TRAINFLOW_S3_MULTIPART_THRESHOLD": "16MiB",
            "TRAINFLOW_S3_MULTIPART_CHUNKSIZE": "5242880",
            "TRAINFLOW_S3_MAX_CONCURRENCY": "2",
        }
    )
    assert settings == S3Settings(
        connect_timeout=1.5,
        read_timeout=7.0,
        multipart_threshold=16 * MIB,
        multipart_chunksize=5 * MIB,
        max_concurrency=2,
    )
    assert S3Settings.from_env({}) == S3Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRAINFLOW_S3_READ_TIMEOUT", "soon"),
        ("TRAINFLOW_S3_MULTIPART_THRESHOLD", "8 parsecs"),
        ("TRAINFLOW_S3_MAX_CONCURRENCY", "0"),
    ],
)
def test_settings_errors_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(StorageError, match=variable):
        S3Settings.from_env({variable: value})


def test_client_uses_standard_retries_and_the_settings_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    client = make_client(S3Settings(connect_timeout=1.0, read_timeout=2.0))
    assert client.meta.endpoint_url == "http://127.0.0.1:9"  # AWS_ENDPOINT_URL, read by boto3 itself
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (1.0, 2.0)
    explicit = make_client(S3Settings(max_attempts=2))
    assert explicit.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}
    config = transfer_config(S3Settings(multipart_threshold=MIB))
    assert config.multipart_threshold == MIB

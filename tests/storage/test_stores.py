"""LocalStore and S3Store (against moto's server): the operations uploads and downloads are built from."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from tests.fixtures.s3 import s3_client
from trainflow.errors import StorageError
from trainflow.storage.manifest import file_entry
from trainflow.storage.s3 import MIB, make_client
from trainflow.storage.stores import LocalStore, S3Store, open_store


def _file(path: Path, data: bytes) -> tuple[Path, dict[str, Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, file_entry(path)


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _bytes(store: Any, key: str) -> bytes | None:
    chunks = store.read(key)
    return None if chunks is None else b"".join(chunks)


def _recorded(client: Any, event: str) -> list[dict[str, Any]]:
    """The requests (as botocore prepares them) of the operations matching ``event``."""
    seen: list[dict[str, Any]] = []

    def record(request: Any, **_: Any) -> None:
        seen.append(
            {
                name.lower(): value.decode() if isinstance(value, bytes) else value
                for name, value in request.headers.items()
            }
        )

    client.meta.events.register(f"before-send.s3.{event}", record)
    return seen


# --- open_store ---------------------------------------------------------------------------------


def test_open_store_file_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("file://uploads/team")
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "uploads" / "team"
    assert store.url("a/b.json") == (tmp_path / "uploads" / "team" / "a" / "b.json").as_uri()


def test_open_store_file_absolute_and_relative_to_a_root(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/up")
    assert isinstance(store, LocalStore) and store.root == tmp_path / "up"
    relative = open_store("file://up", root=tmp_path / "project")
    assert isinstance(relative, LocalStore) and relative.root == tmp_path / "project" / "up"


def test_open_store_s3_bucket_and_prefix() -> None:
    store = open_store("s3://my-bucket/team/runs/")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("my-bucket", "team/runs")
    assert store.url("exp/manifest.json") == "s3://my-bucket/team/runs/exp/manifest.json"
    assert open_store("s3://my-bucket").url("k") == "s3://my-bucket/k"


@pytest.mark.parametrize(
    ("target", "expected"),
    [("s3://", "missing bucket"), ("file://", "missing folder"), ("gs://b/p", "use s3://bucket/prefix or file://")],
)
def test_open_store_rejects_bad_targets(target: str, expected: str) -> None:
    with pytest.raises(StorageError, match=expected) as error:
        open_store(target)
    assert "\n" not in str(error.value)


# --- LocalStore ---------------------------------------------------------------------------------


def test_local_store_round_trip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    source, entry = _file(tmp_path / "src" / "a.bin", b"hello" * 100)
    assert store.sha256("exp/a.bin") is None and store.read("exp/a.bin") is None
    store.put(source, "exp/a.bin", entry)
    assert store.sha256("exp/a.bin") == entry["sha256"]
    assert _bytes(store, "exp/a.bin") == b"hello" * 100
    store.put(source, "exp/sub/b.bin", entry)
    store.put(source, "other/c.bin", entry)
    (tmp_path / "store" / "exp" / ".a.bin.x1y2.tmp").write_bytes(b"half written")
    assert store.sizes("exp/") == {"exp/a.bin": 500, "exp/sub/b.bin": 500}
    assert sorted(store.sizes()) == ["exp/a.bin", "exp/sub/b.bin", "other/c.bin"]
    assert store.sizes("nothing/") == {}
    store.delete("exp/a.bin")
    store.delete("exp/a.bin")  # deleting what is not there is fine
    assert store.sha256("exp/a.bin") is None


def test_local_store_refuses_a_file_that_does_not_match_its_entry(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    source, entry = _file(tmp_path / "a.bin", b"content")
    with pytest.raises(StorageError, match=r"a\.bin: changed while being copied"):
        store.put(source, "a.bin", {**entry, "sha256": "0" * 64})
    assert store.sizes() == {}  # neither the object nor a temporary file
    assert source.read_bytes() == b"content"


def test_local_store_errors_are_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    source, entry = _file(tmp_path / "a.bin", b"x")
    with pytest.raises(StorageError, match=r"cannot write") as error:
        LocalStore(blocker / "store").put(source, "a.bin", entry)
    assert "\n" not in str(error.value) and "upload.target" in str(error.value)


# --- S3Store ------------------------------------------------------------------------------------


def test_s3_store_round_trip(s3_bucket: str, tmp_path: Path) -> None:
    store = S3Store(s3_bucket, "team/runs")
    source, entry = _file(tmp_path / "metrics.json", b'{"accuracy": 0.9}')
    assert store.sha256("exp/metrics.json") is None and store.read("exp/metrics.json") is None
    store.put(source, "exp/metrics.json", entry)
    assert store.sha256("exp/metrics.json") == entry["sha256"]
    head = s3_client(os.environ["AWS_ENDPOINT_URL"]).head_object(Bucket=s3_bucket, Key="team/runs/exp/metrics.json")
    assert head["Metadata"] == {"sha256": entry["sha256"]}
    assert head["ContentType"] == "application/json"
    assert _bytes(store, "exp/metrics.json") == source.read_bytes()

    store.put(source, "exp/sub/x.json", entry)
    assert store.sizes("exp/") == {"exp/metrics.json": entry["size"], "exp/sub/x.json": entry["size"]}
    store.delete("exp/metrics.json")
    assert store.sha256("exp/metrics.json") is None
    assert list(store.sizes()) == ["exp/sub/x.json"]


def test_s3_single_request_carries_the_manifest_sha256_for_s3_to_check(s3_bucket: str, tmp_path: Path) -> None:
    client = make_client()
    sent = _recorded(client, "PutObject")
    source, entry = _file(tmp_path / "a.bin", os.urandom(1000))
    S3Store(s3_bucket, client=client).put(source, "a.bin", entry)
    assert len(sent) == 1
    assert sent[0]["x-amz-checksum-sha256"] == _b64_sha256(source.read_bytes())


def test_s3_foreign_objects_have_no_sha256(s3_bucket: str) -> None:
    s3_client(os.environ["AWS_ENDPOINT_URL"]).put_object(Bucket=s3_bucket, Key="p/x.bin", Body=b"12345")
    store = S3Store(s3_bucket, "p")
    assert store.sizes() == {"x.bin": 5} and store.sha256("x.bin") is None


@pytest.mark.parametrize("size", [1000, 6 * MIB + 123])
def test_s3_put_refuses_bytes_that_differ_from_the_entry(s3_bucket: str, tmp_path: Path, size: int) -> None:
    """A file that changed after it was hashed is never stored, in one request or in parts."""
    source, entry = _file(tmp_path / "a.bin", os.urandom(size))
    store = S3Store(s3_bucket, transfer=TransferConfig(multipart_threshold=1 * MIB, multipart_chunksize=5 * MIB))
    for wrong in ({**entry, "sha256": hashlib.sha256(b"else").hexdigest()}, {**entry, "size": size + 1}):
        with pytest.raises(StorageError, match=r"a\.bin: changed while being uploaded") as error:
            store.put(source, "a.bin", wrong)
        assert "\n" not in str(error.value)
    assert store.sizes() == {}
    uploads = s3_client(os.environ["AWS_ENDPOINT_URL"]).list_multipart_uploads(Bucket=s3_bucket)
    assert not uploads.get("Uploads")  # an interrupted multipart upload was aborted, not left behind


def test_s3_multipart_upload_in_parts_with_sha256_checksums(s3_bucket: str, tmp_path: Path) -> None:
    data = os.urandom(11 * MIB + 123)  # three parts of 5 MiB (S3's smallest part)
    source, entry = _file(tmp_path / "big.pt", data)
    client = make_client()
    parts = _recorded(client, "UploadPart")
    store = S3Store(
        s3_bucket, "m", client=client, transfer=TransferConfig(multipart_threshold=1 * MIB, multipart_chunksize=5 * MIB)
    )
    store.put(source, "big.pt", entry)
    assert len(parts) == 3
    sent = [headers["x-amz-checksum-sha256"] for headers in parts]  # S3 checks each part against its own
    assert sorted(sent) == sorted(_b64_sha256(data[i : i + 5 * MIB]) for i in range(0, len(data), 5 * MIB))
    head = s3_client(os.environ["AWS_ENDPOINT_URL"]).head_object(Bucket=s3_bucket, Key="m/big.pt", PartNumber=1)
    assert head["PartsCount"] == 3
    assert store.sha256("big.pt") == entry["sha256"]
    assert hashlib.sha256(_bytes(store, "big.pt") or b"").hexdigest() == entry["sha256"]


def test_s3_small_files_are_single_part(s3_bucket: str, tmp_path: Path) -> None:
    source, entry = _file(tmp_path / "small.bin", os.urandom(2 * MIB))
    S3Store(s3_bucket).put(source, "small.bin", entry)  # default threshold: 8 MiB
    head = s3_client(os.environ["AWS_ENDPOINT_URL"]).head_object(Bucket=s3_bucket, Key="small.bin", PartNumber=1)
    assert not head.get("PartsCount")


# --- settings: botocore's own ----------------------------------------------------------------------


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.fixtures.s3 import without_aws_credentials

    without_aws_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


def test_client_reads_botocores_variables(fake_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client()
    assert client.meta.endpoint_url == "http://127.0.0.1:9"  # AWS_ENDPOINT_URL, read by boto3 itself
    assert client.meta.config.retries == {"mode": "standard"}  # botocore's default attempts for the mode
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (5, 30)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    assert make_client().meta.config.retries == {"mode": "adaptive", "total_max_attempts": 4}


def test_client_reads_the_profiles_retry_mode(fake_aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "aws-config").write_text("[default]\nretry_mode = legacy\nmax_attempts = 6\n")
    assert make_client().meta.config.retries == {"mode": "legacy", "total_max_attempts": 6}


def test_code_may_pass_a_botocore_config(fake_aws: None) -> None:
    client = make_client(Config(read_timeout=2, retries={"total_max_attempts": 2}))
    assert client.meta.config.read_timeout == 2 and client.meta.config.connect_timeout == 5
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}

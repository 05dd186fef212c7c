"""Upload a result package to ``<upload.target>/<experiment-id>/``, resumably and verifiably.

The order makes every state of the target safe to read and cheap to resume:

1. hash every local file (sha256 and size) and build the manifest;
2. skip each object already at the target with the same size and sha256;
3. if anything must change, first delete an existing ``manifest.json`` (a folder carries a
   manifest only while it matches every object), and so for each of the package's own
   manifests (``results/manifest.json``) that changes;
4. upload the rest, each verified after upload (size and checksum), every manifest after all
   the files of its folder (:func:`upload_order`);
5. upload ``manifest.json`` last, then check every object against it.

An interrupted upload leaves objects but no manifest; running it again uploads only what is
missing or different. Local files are only read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainflow.errors import StorageError
from trainflow.storage.keys import check_key, join_key
from trainflow.storage.manifest import MANIFEST_NAME, file_entry, manifest_bytes, manifest_of
from trainflow.storage.stores import ArtifactStore, LocalStore, open_store
from trainflow.storage.verify import check_objects

if TYPE_CHECKING:
    from trainflow.config import Config
    from trainflow.paths import ProjectPaths

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadReport:
    """What one upload did. Keys are relative to ``location``; ``manifest.json`` is in one of the lists."""

    uploaded: list[str]
    skipped: list[str]
    location: str
    manifest: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def upload_files(
    files: Mapping[str, Path],
    target: str,
    experiment_id: str,
    manifest_extra: Mapping[str, Any] | None = None,
    *,
    store: ArtifactStore | None = None,
    on_uploaded: Callable[[str], None] | None = None,
) -> UploadReport:
    """Upload ``files`` (key -> local path) to ``<target>/<experiment_id>/<key>``, then ``manifest.json``.

    Objects already there with the same size and sha256 are skipped. The manifest is
    ``{"experiment_id": ..., **manifest_extra, "files": {key: {"sha256", "size"}}}``.
    ``store`` replaces the store :func:`open_store` would make for ``target`` (e.g. with other
    S3 settings); ``on_uploaded(key)`` is called after each object is uploaded and verified.
    Raises :class:`StorageError` with a one-line message; the target then holds no manifest
    unless it was already complete, and a re-run finishes the job.
    """
    if "/" in experiment_id or experiment_id in ("", ".", ".."):
        raise ValueError(f"experiment_id must be a non-empty name without '/' (got {experiment_id!r})")
    extra = dict(manifest_extra or {})
    if "files" in extra:
        raise ValueError("manifest_extra must not contain 'files'")
    for key in files:
        check_key(key)
        if key == MANIFEST_NAME:
            raise ValueError(f"{MANIFEST_NAME!r} is written by upload_files; pass the package's files only")

    store = store if store is not None else open_store(target)
    location = store.url(experiment_id)
    store.check()
    entries = {key: _entry(Path(files[key])) for key in sorted(files)}
    manifest = manifest_of(entries, experiment_id=experiment_id, **extra)

    remote = {key: store.stat(join_key(experiment_id, key)) for key in entries}
    pending = upload_order([key for key in entries if remote[key] != _expected(entries[key])])
    skipped = [key for key in entries if key not in pending]
    manifest_key = join_key(experiment_id, MANIFEST_NAME)
    data = manifest_bytes(manifest)
    remote_manifest = store.stat(manifest_key)
    manifest_current = not pending and remote_manifest == (len(data), hashlib.sha256(data).hexdigest())
    if remote_manifest is not None and not manifest_current:
        store.delete(manifest_key)
    for key in pending:  # a folder's manifest must not sit beside files it does not describe
        if _is_manifest(key) and remote[key] is not None:
            store.delete(join_key(experiment_id, key))
    logger.info("%s: %d file(s) to upload, %d already there", location, len(pending), len(skipped))

    uploaded = []
    for key in pending:
        store.put_file(Path(files[key]), join_key(experiment_id, key), entries[key]["sha256"])
        logger.info("uploaded %s (%d bytes)", key, entries[key]["size"])
        uploaded.append(key)
        if on_uploaded is not None:
            on_uploaded(key)

    if manifest_current:
        skipped.append(MANIFEST_NAME)
    else:
        with tempfile.TemporaryDirectory(prefix="trainflow-upload-") as tmp:
            local = Path(tmp) / MANIFEST_NAME
            local.write_bytes(data)
            store.put_file(local, manifest_key, hashlib.sha256(data).hexdigest())
        uploaded.append(MANIFEST_NAME)

    problems = check_objects(store, experiment_id, manifest)
    if problems:
        store.delete(manifest_key)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StorageError(f"{location}: does not verify after upload: {problems[0]}{more}; re-run the upload")
    logger.info("%s: %d uploaded, %d already there; verified", location, len(uploaded), len(skipped))
    return UploadReport(uploaded=uploaded, skipped=sorted(skipped), location=location, manifest=manifest)


def upload_results(config: Config, paths: ProjectPaths) -> UploadReport:
    """Upload the pipeline's results for ``config`` to ``<config.upload.target>/<experiment-id>/``.

    Layout there: ``results/...`` (the result package, with its own manifest), ``model/best.pt``,
    ``config.yaml`` (the resolved config, if ``models/config.yaml`` exists), ``dvc.lock`` (if
    present) and ``manifest.json``. A relative ``file://`` target is relative to the project
    root, so the same params.yaml uploads to the same place from any working directory.
    """
    from trainflow import __version__
    from trainflow.config import experiment_id

    results = Path(paths.results)
    if not results.is_dir():
        raise StorageError(f"{results}: result package not found; run the pipeline first (dvc repro)")
    files: dict[str, Path] = {
        join_key("results", path.relative_to(results).as_posix()): path
        for path in sorted(results.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }
    if not files:
        raise StorageError(f"{results}: result package is empty; run the pipeline first (dvc repro)")
    model = Path(paths.models) / "best.pt"
    if not model.is_file():
        raise StorageError(f"{model}: model snapshot not found; run the pipeline first (dvc repro)")
    files["model/best.pt"] = model
    optional = {"config.yaml": Path(paths.models) / "config.yaml", "dvc.lock": Path(paths.root) / "dvc.lock"}
    files.update({key: path for key, path in optional.items() if path.is_file()})
    store = open_store(config.upload.target, root=Path(paths.root))
    if isinstance(store, LocalStore):
        _say_if_outside(config.upload.target, store.root, Path(paths.root))
    return upload_files(
        files, config.upload.target, experiment_id(config), {"trainflow_version": __version__}, store=store
    )


def _say_if_outside(target: str, folder: Path, root: Path) -> None:
    """Print one line when a file:// target lands outside the project (absolute, or a symlink
    out of it), so that nobody is surprised where the package went."""
    resolved = folder.resolve()
    project = root.resolve()
    if not resolved.is_relative_to(project):
        print(f"upload: upload.target={target} resolves to {resolved}, outside the project {project}", flush=True)


def _is_manifest(key: str) -> bool:
    return key.rpartition("/")[2] == MANIFEST_NAME


def upload_order(keys: list[str]) -> list[str]:
    """``keys`` in the order to upload them: every ``manifest.json`` after every key of its folder.

    Other files first (sorted), then manifests, deepest folder first, so that a manifest is
    only ever written once everything it describes (nested manifests included) is in place: a
    reader of an interrupted upload finds no manifest beside missing or stale files.
    """
    files = sorted(key for key in keys if not _is_manifest(key))
    manifests = sorted((key for key in keys if _is_manifest(key)), key=lambda key: (-key.count("/"), key))
    return files + manifests


def _entry(path: Path) -> dict[str, Any]:
    try:
        return file_entry(path)
    except FileNotFoundError:
        raise StorageError(f"{path}: file not found; nothing was uploaded") from None
    except OSError as error:
        raise StorageError(f"{path}: cannot read ({error.strerror or error})") from None


def _expected(entry: Mapping[str, Any]) -> tuple[int, str]:
    return entry["size"], entry["sha256"]

"""Upload a result package to ``<upload.target>/<experiment-id>/``, resumably.

The order makes every state of the target safe to read and cheap to resume:

1. hash every local file (sha256 and size) and build the manifest;
2. list the folder once; an object there with the same size is compared by its stored sha256
   (one HEAD), and skipped when it is the same;
3. if anything must change, first delete an existing ``manifest.json`` (a folder carries a
   manifest only while it matches every object), and so each of the package's own manifests
   (``results/manifest.json``) that changes;
4. upload the rest, every manifest after all the files of its folder (:func:`upload_order`),
   ``manifest.json`` last.

Each object is checked as it is stored (see :mod:`trainflow.storage.s3`), so nothing is read
back. An interrupted upload leaves objects but no manifest; running it again uploads only what
is missing or different. Local files are only read.
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
from trainflow.storage.manifest import MANIFEST_NAME, file_entry, is_clean_name, manifest_bytes, manifest_of
from trainflow.storage.stores import ArtifactStore, LocalStore, open_store

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
    ``store`` replaces the store :func:`open_store` would make for ``target`` (e.g. with another
    S3 client); ``on_uploaded(key)`` is called after each object is stored. Raises
    :class:`StorageError` with a one-line message; the target then holds no manifest unless it
    was already complete, and a re-run finishes the job.
    """
    if "/" in experiment_id or experiment_id in ("", ".", ".."):
        raise ValueError(f"experiment_id must be a non-empty name without '/' (got {experiment_id!r})")
    extra = dict(manifest_extra or {})
    if "files" in extra:
        raise ValueError("manifest_extra must not contain 'files'")
    for key in files:
        if not is_clean_name(key):
            raise ValueError(f"invalid object key {key!r}: expected a relative POSIX path such as 'results/a.json'")
        if key == MANIFEST_NAME:
            raise ValueError(f"{MANIFEST_NAME!r} is written by upload_files; pass the package's files only")

    store = store if store is not None else open_store(target)
    location = store.url(experiment_id)
    entries = {key: _entry(Path(files[key])) for key in sorted(files)}
    manifest = manifest_of(entries, experiment_id=experiment_id, **extra)
    data = manifest_bytes(manifest)
    entries[MANIFEST_NAME] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    remote = {key.removeprefix(f"{experiment_id}/"): size for key, size in store.sizes(f"{experiment_id}/").items()}

    def unchanged(key: str) -> bool:  # same size in the listing, then the same stored sha256 (one HEAD)
        return (
            remote.get(key) == entries[key]["size"] and store.sha256(f"{experiment_id}/{key}") == entries[key]["sha256"]
        )

    same = {key for key in files if unchanged(key)}
    if len(same) == len(files) and unchanged(MANIFEST_NAME):
        same.add(MANIFEST_NAME)  # else the manifest goes first and comes back last
    pending = upload_order([key for key in entries if key not in same])
    for key in reversed(pending):  # a folder's manifest must not sit beside files it does not describe
        if _is_manifest(key) and key in remote:
            store.delete(f"{experiment_id}/{key}")
    logger.info("%s: %d file(s) to upload, %d already there", location, len(pending), len(same))

    with tempfile.TemporaryDirectory(prefix="trainflow-upload-") as tmp:
        (Path(tmp) / MANIFEST_NAME).write_bytes(data)
        for key in pending:
            local = Path(tmp) / MANIFEST_NAME if key == MANIFEST_NAME else Path(files[key])
            store.put(local, f"{experiment_id}/{key}", entries[key])
            logger.info("uploaded %s (%d bytes)", key, entries[key]["size"])
            if on_uploaded is not None and key != MANIFEST_NAME:
                on_uploaded(key)
    logger.info("%s: %d uploaded, %d already there", location, len(pending), len(same))
    return UploadReport(uploaded=pending, skipped=sorted(same), location=location, manifest=manifest)


def upload_results(config: Config, paths: ProjectPaths) -> UploadReport:
    """Upload the pipeline's results for ``config`` to ``<config.upload.target>/<experiment-id>/``.

    Layout there: ``results/...`` (the result package, with its own manifest), ``model/best.pt``,
    ``config.yaml`` (the resolved config, if ``models/config.yaml`` exists), ``dvc.lock`` (if
    present) and ``manifest.json``, which records the trainflow version and, in a git checkout,
    the revision (and whether tracked files differed from it). A relative ``file://`` target is relative to the project
    root, so the same params.yaml uploads to the same place from any working directory.
    """
    from trainflow import __version__
    from trainflow.config import experiment_id
    from trainflow.git_revision import git_revision

    results = Path(paths.results)
    if not results.is_dir():
        raise StorageError(f"{results}: result package not found; run the pipeline first (dvc repro)")
    files: dict[str, Path] = {
        f"results/{path.relative_to(results).as_posix()}": path
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
    extra = {"trainflow_version": __version__, **git_revision(Path(paths.root))}
    return upload_files(files, config.upload.target, experiment_id(config), extra, store=store)


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

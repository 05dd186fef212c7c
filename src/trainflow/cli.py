"""The ``trainflow`` command: one sub-command per pipeline stage, plus config, upload and doctor.

Every command takes ``--params PATH`` (default params.yaml) and trailing ``key.sub=value``
overrides with the same meaning as ``dvc exp run -S``. A user mistake prints one line,
``error: ...``, and exits non-zero (2 for an invalid config); nothing is half written.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from trainflow import __version__
from trainflow.errors import TrainflowError
from trainflow.paths import ProjectPaths
from trainflow.runtime import pin_cpu_kernels
from trainflow.workspace_lock import workspace_lock

# command -> (module with run(config, paths, **options), one-line help)
STAGES: dict[str, tuple[str, str]] = {
    "prepare": ("trainflow.stages.prepare", "validate the raw data set and write the train/val/test splits"),
    "fit-encoder": ("trainflow.stages.fit_encoder", "fit the feature encoder on the train split"),
    "train": ("trainflow.stages.train", "train the model; resumes from the last checkpoint"),
    "evaluate": ("trainflow.stages.evaluate", "compute val and test metrics and predictions with the best model"),
    "package": ("trainflow.stages.package", "build the result package with its manifest"),
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="experiment file (default: params.yaml)")
    parser.add_argument("--root", default=".", help="project root holding data/, models/, ... (default: .)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override a param, e.g. train.max_epochs=5")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainflow",
        description="Reproducible PyTorch training pipelines. Stages run under `dvc repro`; see dvc.yaml.",
    )
    parser.add_argument("--version", action="version", version=f"trainflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = commands.add_parser("config", help="show the resolved config (defaults < params.yaml < overrides)")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_commands.add_parser("show", help="print the resolved config as YAML")
    show.add_argument("--flat", action="store_true", help="dotted keys, one per line")
    _common(show)
    config_commands.add_parser("validate", help="check params.yaml and overrides; exit 2 on error").set_defaults(
        flat=False
    )
    _common(config_commands.choices["validate"])

    for name, (_, help_text) in STAGES.items():
        stage = commands.add_parser(name, help=help_text)
        _common(stage)
        if name == "train":
            stage.add_argument(
                "--no-resume", dest="resume", action="store_false", help="ignore existing checkpoints, start fresh"
            )

    upload = commands.add_parser("upload", help="upload the result package and model to upload.target (S3 or folder)")
    _common(upload)
    summary = commands.add_parser("summary", help="print test accuracy, where outputs are, and what to try next")
    _common(summary)
    doctor = commands.add_parser(
        "doctor", help="repair what a killed DVC run left behind (empty dvc.lock, stale DVC locks)"
    )
    doctor.add_argument("--root", default=".", help="project root holding dvc.yaml (default: .)")
    return parser


def _load(args: argparse.Namespace) -> Any:
    from trainflow.config import load_config

    return load_config(args.params, args.overrides)


def cmd_config(args: argparse.Namespace) -> dict[str, Any] | None:
    from trainflow.config import experiment_id, flatten, to_dict

    config = _load(args)
    if args.config_command == "validate":
        print(f"{args.params}: valid (experiment {experiment_id(config)})")
        return None
    data = {"experiment_id": experiment_id(config), **to_dict(config)}
    if args.flat:
        for key, value in flatten(data).items():
            print(f"{key}={json.dumps(value)}")
    else:
        print(yaml.safe_dump(data, sort_keys=False), end="")
    return None


def cmd_stage(args: argparse.Namespace) -> dict[str, Any]:
    config = _load(args)  # a config error is reported before the stage's heavier imports
    module = importlib.import_module(STAGES[args.command][0])
    options = {"resume": args.resume} if args.command == "train" else {}
    with workspace_lock(Path(args.root), args.command):
        return module.run(config, ProjectPaths(Path(args.root)), **options)


def cmd_upload(args: argparse.Namespace) -> dict[str, Any]:
    from trainflow.storage.upload import upload_results

    report = upload_results(_load(args), ProjectPaths(Path(args.root)))
    print(f"uploaded {len(report.uploaded)} file(s), {len(report.skipped)} already there -> {report.location}")
    return report.to_dict()


def cmd_summary(args: argparse.Namespace) -> None:
    from trainflow.summary import print_summary

    print_summary(_load(args), ProjectPaths(Path(args.root)))


def cmd_doctor(args: argparse.Namespace) -> None:
    from trainflow.doctor import diagnose_and_repair

    for line in diagnose_and_repair(Path(args.root)):
        print(line)


COMMANDS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "doctor": cmd_doctor,
    "config": cmd_config,
    "upload": cmd_upload,
    "summary": cmd_summary,
    **dict.fromkeys(STAGES, cmd_stage),
}


def log_imported_modules(command: str, log_path: str) -> None:
    """Append the trainflow source files this process loaded to ``log_path`` (JSON lines).

    Set ``TRAINFLOW_IMPORT_LOG`` to check that dvc.yaml lists every file a stage really imports.
    """
    package_root = Path(__file__).resolve().parent
    files = sorted(
        Path(module.__file__).resolve().relative_to(package_root.parent.parent).as_posix()
        for module in list(sys.modules.values())
        if getattr(module, "__file__", None) and Path(module.__file__).resolve().is_relative_to(package_root)
    )
    with open(log_path, "a") as log:
        log.write(json.dumps({"command": command, "files": files}) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        pin_cpu_kernels()  # before any stage imports torch: same bits on every x86 CPU
        COMMANDS[args.command](args)
    except TrainflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if log_path := os.environ.get("TRAINFLOW_IMPORT_LOG"):
            log_imported_modules(args.command, log_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

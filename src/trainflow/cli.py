"""The ``trainflow`` command: one sub-command per pipeline stage, plus config, upload and doctor.

Every command takes ``--params PATH`` (default params.yaml) and trailing ``key.sub=value``
overrides with the same meaning as ``dvc exp run -S``. A user mistake prints one line,
``error: ...``, and exits non-zero (2 for an invalid config); nothing is half written.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import pkgutil
import re
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

STAGE_PACKAGE = Path(__file__).resolve().parent / "stages"


def stage_commands() -> dict[str, tuple[str, str]]:
    """``command -> (module with run(config, paths, **options), one-line help)`` for every
    module of :mod:`trainflow.stages`, found without importing them (train imports torch).

    The command is the module name with ``-`` for ``_`` (``fit_encoder`` -> ``fit-encoder``), as
    dvc.yaml's ``cmd:`` lines call it; the help is the first line of its docstring.
    """
    commands: dict[str, tuple[str, str]] = {}
    for info in sorted(pkgutil.iter_modules([str(STAGE_PACKAGE)]), key=lambda module: module.name):
        source = (STAGE_PACKAGE / f"{info.name}.py").read_text(encoding="utf-8")
        doc = (ast.get_docstring(ast.parse(source)) or "").split("\n", 1)[0]
        help_text = doc.partition(" stage: ")[2] or doc
        help_text = re.sub(r":\w+:`([^`]*)`|``([^`]*)``", lambda match: match[1] or match[2], help_text).rstrip(".")
        commands[info.name.replace("_", "-")] = (f"trainflow.stages.{info.name}", help_text)
    return commands


STAGES = stage_commands()


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
    # Using a trained model: score new data, export it (trainflow.predict, trainflow.export).
    predict = commands.add_parser("predict", help="score a CSV or parquet file with a trained model")
    predict.add_argument("input", help="CSV or parquet with the training features (the label may be present)")
    predict.add_argument("--model", default=None, help="models/best.pt (default), a package folder, file:// or s3://")
    predict.add_argument("--output", default=None, help="FILE.parquet or FILE.csv (default: CSV on stdout)")
    predict.add_argument("--score", action="store_true", help="also check the label column and print metrics")
    predict.add_argument("--batch-size", type=int, default=None, help="rows per batch (default: the training one)")
    export = commands.add_parser("export", help="export a trained model as ONNX (raw features in) or TorchScript")
    export.add_argument("--format", required=True, choices=["onnx", "torchscript"], dest="export_format")
    export.add_argument("--model", default=None, help="models/best.pt (default), a package folder, file:// or s3://")
    export.add_argument("--output", default=None, help="default: exports/model.onnx or exports/model.torchscript.pt")
    sweep = commands.add_parser("sweep", help="run (or continue) the hyperparameter sweep in sweep.yaml")
    sweep.add_argument("--spec", default=None, help="sweep spec file (default: sweep.yaml)")
    sweep.add_argument("--root", default=".", help="project root (default: .)")
    sweep.add_argument("--apply-best", action="store_true", help="write the best trial's values into params.yaml")
    return parser


def _load(args: argparse.Namespace, machine: bool = False) -> Any:
    """The resolved config; ``machine`` also refuses what this machine cannot run (fp16 on CPU)."""
    from trainflow.config import load_config

    return load_config(args.params, args.overrides, machine=machine)


def cmd_config(args: argparse.Namespace) -> dict[str, Any] | None:
    from trainflow.config import experiment_id, flatten, to_dict

    config = _load(args, machine=args.config_command == "validate")
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
    config = _load(args, machine=True)  # a config error is reported before the stage's heavier imports
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


def cmd_predict(args: argparse.Namespace) -> dict[str, Any]:
    from trainflow.predict import predict_command

    return predict_command(args.input, args.model, args.output, score=args.score, batch_size=args.batch_size)


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    from trainflow.export import export_command

    return export_command(args.export_format, args.model, args.output)


def cmd_sweep(args: argparse.Namespace) -> dict[str, Any]:
    from trainflow.sweep import sweep_command

    return sweep_command(args.spec, Path(args.root), apply=args.apply_best)


COMMANDS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "sweep": cmd_sweep,
    "predict": cmd_predict,
    "export": cmd_export,
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


def stop_writing_to_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


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
    except BrokenPipeError:  # `trainflow summary | head`: the reader left, as with any filter
        stop_writing_to_stdout()
        return 141
    finally:
        if log_path := os.environ.get("TRAINFLOW_IMPORT_LOG"):
            log_imported_modules(args.command, log_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

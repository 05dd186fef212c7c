"""``python -m flows``: run a flow, a stage or the nightly server; the container's entrypoint.

    python -m flows flow training_pipeline [-S train.max_epochs=5] [--no-upload]
    python -m flows flow retrain [--baseline HEAD] [--no-pull] [--no-push] [--no-remote]
    python -m flows stage train          # dvc repro train (the stage and what it needs)
    python -m flows repro                # dvc repro (the whole pipeline)
    python -m flows serve [...]          # see flows/serve.py
    python -m flows COMMAND [ARGS...]    # anything else runs as given (trainflow, dvc, prefect ...)

The last form matters in a container: Prefect's docker worker passes its own command
(``prefect flow-run execute``) as arguments to the image's entrypoint, and it must run as is.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

VERBS = ("flow", "stage", "repro", "serve")
FLOWS = ("training_pipeline", "retrain")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flows", description="Run trainflow's Prefect flows or stages.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser("flow", help="run a flow once (against PREFECT_API_URL when set)")
    run.add_argument("name", choices=FLOWS)
    run.add_argument("--root", default=".", help="project root (default: .)")
    run.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--no-upload", dest="upload", action="store_false", help="do not upload the package")
    run.add_argument("--baseline", default="HEAD", help="retrain: accepted model (git revision or .json file)")
    run.add_argument("--no-pull", dest="pull", action="store_false", help="retrain: skip dvc pull")
    run.add_argument("--no-push", dest="push", action="store_false", help="retrain: skip dvc push")
    run.add_argument("--no-remote", dest="require_remote", action="store_false", help="retrain: allow no remote")
    stage = verbs.add_parser("stage", help="dvc repro STAGE: the stage and what it needs")
    stage.add_argument("stage")
    verbs.add_parser("repro", help="dvc repro: the whole pipeline")
    verbs.add_parser("serve", help="serve the nightly retrain (python -m flows.serve --help)", add_help=False)
    return parser


def run_flow(args: argparse.Namespace) -> int:
    from trainflow.config import parse_override
    from trainflow.errors import TrainflowError
    from trainflow.training.supervisor import CommandFailed

    try:
        overrides = dict(parse_override(text) for text in args.overrides)
        options: dict[str, Any] = {"root": args.root, "overrides": overrides, "upload": args.upload}
        if args.name == "retrain":
            from flows.retrain import retrain

            retrain(
                **options, baseline=args.baseline, pull=args.pull, push=args.push, require_remote=args.require_remote
            )
        else:
            from flows.training_pipeline import training_pipeline

            training_pipeline(**options)
        print_closing_summary(args.root, args.overrides)
    except TrainflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except (CommandFailed, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; run the flow again to continue from the saved position", file=sys.stderr)
        return 130
    return 0


def print_closing_summary(root: str, overrides: Sequence[str]) -> None:
    """The same closing lines as ``trainflow summary``, for the experiment the flow ran."""
    from pathlib import Path

    from trainflow.config import load_config
    from trainflow.paths import ProjectPaths
    from trainflow.summary import print_summary

    print_summary(load_config(Path(root) / "params.yaml", overrides), ProjectPaths(Path(root)))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in VERBS and not argv[0].startswith("-"):
        os.execvp(argv[0], argv)  # a command of its own, e.g. from Prefect's docker worker
    if argv[:1] == ["serve"]:
        from flows.serve import main as serve

        serve(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    if args.verb == "flow":
        return run_flow(args)
    from tasks.dvc import dvc_env, dvc_executable

    dvc = dvc_executable()
    command = [dvc, "repro", args.stage] if args.verb == "stage" else [dvc, "repro"]
    os.execve(dvc, command, dvc_env())
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())

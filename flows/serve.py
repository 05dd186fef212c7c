"""``make serve``: run the nightly ``retrain`` on this machine, no work pool or worker needed.

``flow.serve`` registers a deployment with the Prefect server named by ``PREFECT_API_URL``,
on the same schedule as the ``retrain-nightly`` deployment in prefect.yaml, and then runs
each scheduled (or manually triggered) flow run in a subprocess of this one until stopped.

    python -m flows.serve [--root .] [--cron "0 3 * * *"] [--timezone UTC] [--baseline HEAD]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from prefect.schedules import Cron

from flows.retrain import retrain

#: Every night at 03:00 UTC: prefect.yaml's retrain deployments and .github/workflows/retrain.yml
#: write the same schedule, and tests/test_workflows.py holds the three equal.
NIGHTLY_CRON = "0 3 * * *"
TIMEZONE = "UTC"
DEPLOYMENT_NAME = "retrain-nightly-served"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="project root holding dvc.yaml (default: .)")
    parser.add_argument("--name", default=DEPLOYMENT_NAME, help=f"deployment name (default: {DEPLOYMENT_NAME})")
    parser.add_argument("--cron", default=NIGHTLY_CRON, help=f"schedule (default: {NIGHTLY_CRON!r})")
    parser.add_argument("--timezone", default=TIMEZONE, help=f"timezone of the schedule (default: {TIMEZONE})")
    parser.add_argument("--baseline", default="HEAD", help="accepted model: git revision or .json file")
    parser.add_argument(
        "--no-remote", dest="require_remote", action="store_false", help="allow a project without a DVC remote"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    retrain.serve(
        name=args.name,
        schedules=[Cron(args.cron, timezone=args.timezone)],
        parameters={
            "root": str(Path(args.root).resolve()),
            "baseline": args.baseline,
            "require_remote": args.require_remote,
        },
        description="Nightly retrain served from one machine (make serve).",
        tags=["trainflow", "nightly"],
    )


if __name__ == "__main__":
    main()

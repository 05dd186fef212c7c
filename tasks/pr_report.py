"""The pull-request report: this checkout's pipeline results against a base revision, in markdown.

    python -m tasks.pr_report --base REV --out DIR [--images-url URL] [--markdown FILE]

Run after ``dvc repro`` on a pull request's head. It writes into ``DIR``:

- ``learning_curve_{head,base}.png`` from the history CSV and ``confusion_test_{head,base}.png``
  from the test confusion CSV that each side's dvc.yaml names in its top-level ``plots``
  (``plots/history.csv``, ``plots/confusion_test.csv`` when it names none), the head's from the
  working tree and the base's from git (``git show REV:...``; those plots are committed, not
  DVC-cached, so no remote is needed);
- ``report.md`` (or ``--markdown FILE``): a marker line for the PR comment to find itself by,
  ``dvc metrics diff --md REV``, ``dvc params diff --md REV`` and the four images side by side.

Images are embedded by file name, for a folder that keeps them beside the markdown (the CI
artifact); with ``--images-url`` they become links to that URL instead, because a job summary
or a comment cannot show a file that no web server holds.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import yaml

from trainflow.errors import TrainflowError
from trainflow.io import atomic_write_text

#: The first line of the report; the PR workflow updates the comment holding it.
MARKER = "<!-- trainflow-pr-report -->"
#: Where the plots are when dvc.yaml's top-level ``plots`` does not say.
HISTORY = "plots/history.csv"
CONFUSION = "plots/confusion_test.csv"


class ReportError(TrainflowError):
    """A revision, a plot file or a DVC command the report needs is not there."""


def _git_show(root: Path, rev: str, path: str) -> str | None:
    """``path`` as committed at ``rev``; None when that commit does not have it."""
    result = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def plot_files(dvc_yaml: str | None) -> tuple[str, str]:
    """``(history CSV, test confusion CSV)`` as dvc.yaml's top-level ``plots`` names them.

    The confusion CSV is the file of a ``template: confusion`` entry (the one naming ``test``
    if several); the history is the first file of any other entry with an ``epoch`` x axis.
    """
    history, confusion = HISTORY, None
    try:
        entries = (yaml.safe_load(dvc_yaml or "") or {}).get("plots") or []
    except yaml.YAMLError:
        entries = []
    found_history = False
    for entry in entries if isinstance(entries, list) else []:
        for name, props in entry.items() if isinstance(entry, dict) else []:
            props = props if isinstance(props, dict) else {}
            if props.get("template") == "confusion" and str(name).endswith(".csv"):
                if confusion is None or "test" in str(name):
                    confusion = str(name)
            elif props.get("x") == "epoch" and not found_history:
                files = list(props["y"]) if isinstance(props.get("y"), dict) else [name]
                history, found_history = str(files[0]), True
    return history, confusion or CONFUSION


def _dvc_markdown(root: Path, args: Sequence[str]) -> str:
    result = subprocess.run(["dvc", *args], cwd=root, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise ReportError(f"`dvc {' '.join(args)}` exited with {result.returncode}: {lines[-1] if lines else ''}")
    return result.stdout.strip() or "No changes."


def confusion_matrix(pairs: pd.DataFrame) -> tuple[list[list[int]], list[object]]:
    """Counts of (actual row, predicted column) from ``actual,predicted`` rows, and the labels."""
    labels = sorted(set(pairs["actual"]) | set(pairs["predicted"]))
    table = pd.crosstab(pairs["actual"], pairs["predicted"]).reindex(index=labels, columns=labels, fill_value=0)
    return table.to_numpy().tolist(), labels


def render_plots(out: Path, side: str, history: str | None, confusion: str | None) -> dict[str, str | None]:
    """Write this side's PNGs into ``out``; ``{kind: file name or None when the CSV is missing}``."""
    from trainflow.results import plots

    names: dict[str, str | None] = {"learning_curve": None, "confusion_test": None}
    if history is not None:
        names["learning_curve"] = f"learning_curve_{side}.png"
        figure = plots.learning_curve_figure(pd.read_csv(io.StringIO(history)))
        plots.save_png(figure, out / names["learning_curve"])
    if confusion is not None:
        names["confusion_test"] = f"confusion_test_{side}.png"
        matrix, labels = confusion_matrix(pd.read_csv(io.StringIO(confusion)))
        plots.save_png(
            plots.confusion_matrix_figure(matrix, labels, f"confusion matrix (test, {side})"),
            out / names["confusion_test"],
        )
    return names


def _image(name: str | None, alt: str, images_url: str | None) -> str:
    if name is None:
        return "(none)"
    return f"[{alt}]({images_url})" if images_url else f"![{alt}]({name})"


def report_markdown(
    base: str,
    metrics: str,
    params: str,
    head_images: dict[str, str | None],
    base_images: dict[str, str | None],
    images_url: str | None = None,
) -> str:
    """The report: metrics and params diffs, then a table of the PR's and the base's plots."""
    rows = []
    for kind, title in (("learning_curve", "Learning curves"), ("confusion_test", "Confusion matrix (test)")):
        pr = _image(head_images[kind], f"{title}: this PR", images_url)
        was = _image(base_images[kind], f"{title}: base", images_url)
        rows.append(f"| {title} | {pr} | {was} |")
    where = f"PNG files in [the run's artifact]({images_url})." if images_url else "PNG files beside this report."
    return "\n".join(
        [
            MARKER,
            f"## Pipeline report: this PR vs `{base}`",
            "",
            "### Metrics",
            "",
            metrics,
            "",
            "### Params",
            "",
            params,
            "",
            "### Plots",
            "",
            "| plot | this PR | base |",
            "| --- | --- | --- |",
            *rows,
            "",
            where,
            "",
        ]
    )


def build_report(root: Path, base: str, out: Path, images_url: str | None = None) -> str:
    """Render both sides' plots into ``out`` and return the report markdown."""
    if (
        subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], cwd=root, capture_output=True
        ).returncode
        != 0
    ):
        raise ReportError(f"--base: {base!r} is not a commit of {root.resolve()}; fetch it (fetch-depth: 0)")
    dvc_yaml = root / "dvc.yaml"
    history, confusion = plot_files(dvc_yaml.read_text() if dvc_yaml.is_file() else None)
    head = {name: (root / name).read_text() if (root / name).is_file() else None for name in (history, confusion)}
    if head[history] is None:
        raise ReportError(f"{root / history}: no pipeline results in this checkout; run `dvc repro` first")
    out.mkdir(parents=True, exist_ok=True)
    head_images = render_plots(out, "head", head[history], head[confusion])
    base_history, base_confusion = plot_files(_git_show(root, base, "dvc.yaml"))
    base_images = render_plots(out, "base", _git_show(root, base, base_history), _git_show(root, base, base_confusion))
    metrics = _dvc_markdown(root, ["metrics", "diff", "--md", base])
    params = _dvc_markdown(root, ["params", "diff", "--md", base])
    return report_markdown(base, metrics, params, head_images, base_images, images_url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.pr_report", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument("--base", required=True, help="the revision to compare with (the PR's base commit)")
    parser.add_argument("--out", required=True, help="folder for the PNGs and report.md")
    parser.add_argument("--images-url", default="", help="link the images to this URL instead of embedding them")
    parser.add_argument("--markdown", default=None, help="where to write the markdown (default: OUT/report.md)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        markdown = build_report(Path(args.root), args.base, out, args.images_url or None)
    except TrainflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    target = Path(args.markdown) if args.markdown else out / "report.md"
    atomic_write_text(target, markdown)
    print(f"pr report: {target} and the plots in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

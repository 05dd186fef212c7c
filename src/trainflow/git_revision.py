"""The git revision of a project, for the upload's manifest (never for the result package).

The result package is a pure function of the run (two builds are bit-identical) and DVC does
not re-run the package stage when only an unrelated commit lands, so a revision written into
``results/`` would go stale; the uploaded copy records the revision at upload time instead,
beside ``dvc.lock`` (the hash of every source file each stage ran).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_revision(root: Path) -> dict[str, object]:
    """``{"git_revision": sha, "git_dirty": bool}`` of the repository holding ``root``; ``{}``
    outside git (or without git). Dirty means a tracked file differs from that commit."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "HEAD"], capture_output=True, text=True, timeout=30
        )
        if head.returncode != 0:
            return {}
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {"git_revision": head.stdout.strip(), "git_dirty": bool(status.stdout.strip())}

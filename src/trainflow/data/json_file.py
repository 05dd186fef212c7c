"""Reading a JSON file that an earlier stage wrote, or a DataError that says which stage to run.

Stage outputs such as ``data/prepared/info.json`` and ``models/encoder.json`` are read by later
stages; a missing or damaged one is the user's to fix by running the stage that writes it, so
the message names the file and that stage. Standard library only: the encoder is loaded by
prediction, which should not pay for pandas.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainflow.errors import DataError


def read_json(path: Path, *, missing: str, again: str, unreadable: str = "unreadable") -> Any:
    """The parsed contents of ``path``.

    A missing file is ``{path}: not found; {missing}``; one that cannot be read or parsed is
    ``{path}: {unreadable} ({error}); {again}``.
    """
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found; {missing}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: {unreadable} ({error}); {again}") from None

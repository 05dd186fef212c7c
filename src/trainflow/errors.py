"""User-facing errors.

Every mistake a user can make (a bad key in params.yaml, a bad column in a data file, a
corrupt checkpoint, an unreachable bucket) is raised as a :class:`TrainflowError`. The CLI
prints its message as one line and exits with its ``exit_code``; nothing else is a user error,
so anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class TrainflowError(Exception):
    """A problem the user can fix; the message says what is wrong and what would be valid."""

    exit_code = 1


class ConfigError(TrainflowError):
    """params.yaml or a command-line override is invalid. Raised before any work starts."""

    exit_code = 2


class DataError(TrainflowError):
    """An input data file is missing, unreadable or fails its schema."""


class CheckpointError(TrainflowError):
    """A checkpoint cannot be read or does not belong to the current experiment."""


class StorageError(TrainflowError):
    """An artifact store (local folder or S3) cannot be read or written."""

"""Object keys: the POSIX paths, relative to a store's root, under which artifacts are stored."""

from __future__ import annotations


def check_key(key: str) -> str:
    """``key`` if it is a clean relative POSIX path (no leading ``/``, no ``.``, ``..`` or empty parts).

    Keys come from code, not from users, so a bad one is a bug: ``ValueError``.
    """
    parts = key.split("/")
    if not key or "\\" in key or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid object key {key!r}: expected a relative POSIX path such as 'results/metrics.json'")
    return key


def join_key(*parts: str) -> str:
    """Join key parts with ``/``, skipping empty ones."""
    return "/".join(part.strip("/") for part in parts if part.strip("/"))

"""File checksums for the trace format (Arrow IPC carries none of its own). Stdlib only."""

from __future__ import annotations

import hashlib
from pathlib import Path


def update_from_file(digest, path: Path) -> None:
    """Feeds a file's bytes to `digest` in 1 MiB blocks."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    update_from_file(digest, path)
    return digest.hexdigest()

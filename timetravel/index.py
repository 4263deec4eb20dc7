"""Builds (once) and opens the replay index beside a trace: keyframes from the record side's
replay engine and the write index from the read side (this package may import both)."""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from analysis.trace import Trace
from analysis.write_index import WriteIndex, build_write_index
from tracer.format.cache import cache_dir, is_real_dir, prune_stale, remove
from tracer.format.schema import TABLES
from tracer.replay.keyframes import (
    DEFAULT_EVERY, UNICORN_VERSION, Keyframes, TraceKeyframes, build_keyframes,
)

INDEX_VERSION = 2
_INFO = "index.json"


@dataclass(frozen=True)
class ReplayIndex:
    """An opened index: its directory, what index.json says, and the two query stores."""

    directory: Path
    info: dict
    keyframes: Keyframes
    writes: WriteIndex


def _only_regular_files(directory: Path) -> bool:
    """True for a real directory holding regular files only: the index is read through
    plain paths, so a link or FIFO planted there must make it count as missing."""
    if not is_real_dir(directory):
        return False
    try:
        return all(stat.S_ISREG(os.lstat(p).st_mode) for p in directory.iterdir())
    except OSError:
        return False


def _valid(directory: Path) -> dict | None:
    if not _only_regular_files(directory):
        return None
    try:
        info = json.loads((directory / _INFO).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(info, dict) or info.get("version") != INDEX_VERSION \
            or info.get("unicorn") != UNICORN_VERSION:
        return None
    return info


def build_index(trace: Trace, every: int = DEFAULT_EVERY, directory: Path | None = None
                ) -> dict:
    """Builds the index into `directory` (default: the trace's cache directory).

    Returns:
        What index.json records: counts, sizes and build times.
    """
    target = directory or cache_dir(trace.files)
    tmp = target.with_name(target.name + f".building-{os.getpid()}")
    remove(tmp)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    kf = build_keyframes(trace.files, tmp, every)
    t1 = time.perf_counter()
    writes = build_write_index(trace, tmp)
    t2 = time.perf_counter()
    size = sum(p.stat().st_size for p in tmp.iterdir())
    info = {"version": INDEX_VERSION, "unicorn": UNICORN_VERSION, **kf, **writes,
            "keyframe_seconds": round(t1 - t0, 3), "write_index_seconds": round(t2 - t1, 3),
            "bytes": size}
    (tmp / _INFO).write_text(json.dumps(info, indent=2))
    remove(target)
    try:
        os.replace(tmp, target)
    except OSError:
        # Another process built the same index meanwhile: theirs is as good as ours.
        remove(tmp)
        if _valid(target) is None:
            raise
    if directory is None:
        prune_stale(trace.files, target)
    return info


def open_index(trace: Trace, on_build: Callable[[], None] | None = None) -> ReplayIndex:
    """The trace's index, built first if it is missing or stale. A fast recording whose
    event tables are pending uses the keyframes it holds and builds nothing: the machine
    state at a step needs no events, and a question about writes materialises only the
    slices it reaches (timetravel/slices.py)."""
    if trace.files.pending:
        from timetravel.slices import SliceWrites

        return ReplayIndex(trace.path, {"pending": True}, TraceKeyframes(trace.files),
                           SliceWrites(trace, cache_dir(trace.files) / "slices"))
    directory = cache_dir(trace.files)
    info = _valid(directory)
    if info is None:
        # Damage is refused before the note, so that it is the one line the user sees (the
        # build and the query read nearly every table anyway; each is checked once).
        trace.files.check_tables(*TABLES)
        if on_build is not None:
            on_build()
        info = build_index(trace)
    return ReplayIndex(directory, info, Keyframes(directory), WriteIndex(directory))

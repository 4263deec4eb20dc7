"""What bounds a recording's trace on disk: its size, every file counted, and the free space
left on the disk that holds it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tracer.ending import StopReason

# A runaway loop reaches 1 GiB in about a minute at the slowest (a store loop compresses to
# ~13 MB/s) and in seconds when it makes the kernel write (getrandom, read); 1 GiB holds
# some 450 million access events, more than the reports and replay index handle briskly.
DEFAULT_MAX_TRACE_MB = 1024.0
# Stop before the disk is full: the system (and the trace's own meta.json) still needs room.
DEFAULT_MIN_FREE_MB = 512.0
# Free space is checked again each time the trace has grown by this much.
DISK_CHECK_EVERY = 4 << 20


def mb_to_bytes(mb: float | None) -> int | None:
    """MiB (as the options give them) to bytes; None and 0 mean no limit."""
    return int(mb * (1 << 20)) if mb else None


class TraceBudget:
    """The bytes a trace holds, against the trace-size limit and the free-disk floor.

    Each thread reports the totals of the files it writes itself (the drain thread the event
    tables, the emulator thread the syscall tables), so no thread reads a file position
    another thread is moving.
    """

    def __init__(self, directory: Path, max_bytes: int | None, min_free_bytes: int | None):
        self._directory = directory
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self._parts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next_disk_check = 0

    @property
    def total(self) -> int:
        """Bytes of the trace so far (as last reported)."""
        return sum(self._parts.values())

    def room(self) -> int | None:
        """Bytes the trace may still grow by, or None without a size limit."""
        if self.max_bytes is None:
            return None
        return max(0, self.max_bytes - self.total)

    def report(self, part: str, nbytes: int) -> StopReason | None:
        """Records that `part` of the trace now holds `nbytes`.

        Returns:
            The stop reason of a limit the trace has reached (`max-trace-size`,
            `min-free-disk`), or None.
        """
        with self._lock:
            self._parts[part] = nbytes
            total = self.total
            if self.max_bytes is not None and total >= self.max_bytes:
                return StopReason.MAX_TRACE_SIZE
            if self.min_free_bytes is None or total < self._next_disk_check:
                return None
            self._next_disk_check = total + DISK_CHECK_EVERY
        if self.free_bytes() < self.min_free_bytes:
            return StopReason.MIN_FREE_DISK
        return None

    def free_bytes(self) -> int:
        """Bytes an unprivileged writer may still use on the trace's file system."""
        st = os.statvfs(self._directory)
        return st.f_bavail * st.f_frsize

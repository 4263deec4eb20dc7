"""The program's initial bytes (memory_image) and the one decoding the analysis needs:
the target of a direct `call rel32`. Full disassembly belongs to the record side."""

from __future__ import annotations

import bisect

import pyarrow as pa

_CALL_REL32 = 0xE8


class MemoryImage:
    """Bytes of every region at step 0 (code never changes in our programs: text is r-x)."""

    def __init__(self, image: pa.Table):
        rows = sorted(image.to_pylist(), key=lambda r: r["start"])
        self._starts = [r["start"] for r in rows]
        self._data = [r["data"] for r in rows]

    def read(self, addr: int, size: int) -> bytes | None:
        """`size` bytes at `addr`, or None if they are not all inside one recorded region."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        off = addr - self._starts[i]
        chunk = self._data[i][off:off + size]
        return chunk if len(chunk) == size else None

    def call_target(self, rip: int) -> int | None:
        """Where the `call` at `rip` goes, if it is a direct `call rel32` (else None)."""
        code = self.read(rip, 5)
        if code is None or code[0] != _CALL_REL32:
            return None
        return (rip + 5 + int.from_bytes(code[1:5], "little", signed=True)) & (2**64 - 1)

"""The address index of writes: every byte's writers findable without scanning the trace.

Built once beside the trace (see tracer.format.cache) from `accesses` (CPU writes) and
`kernel_writes` (bytes the kernel stored), as an uncompressed Arrow IPC file sorted by
(addr, size, step) so that a query memory-maps it and binary-searches. Reads through
tracer.format only; never imports the emulator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from analysis.trace import Trace
from tracer.format.schema import SOURCES

SMALL_FILE = "writes.arrow"
HIGH_FILE = "writes_high.arrow"
BIG_FILE = "big_writes.arrow"
MAX_SMALL = 16          # a CPU write is at most 16 bytes; larger kernel writes go apart
_KERNEL = SOURCES.index("kernel")
_KEY_SHIFT = 5          # key = addr << 5 | size (size <= 16)

_HIGH = pa.schema([("row", pa.uint64()), ("value_hi", pa.uint64())])
_BIG = pa.schema([("step", pa.uint64()), ("rip", pa.uint64()), ("addr", pa.uint64()),
                  ("size", pa.uint64()), ("data", pa.large_binary())])


@dataclass(frozen=True)
class Write:
    """One store into memory: by an instruction (explicit/implicit) or by the kernel."""

    step: int
    rip: int
    addr: int
    size: int
    source: str
    data: bytes

    def covers(self, addr: int) -> bool:
        """True when this write stored byte `addr`."""
        return self.addr <= addr < self.addr + self.size


def build_write_index(trace: Trace, directory: Path) -> dict[str, int]:
    """Writes the index files into `directory`.

    Returns:
        Row counts: `cpu_writes`, `kernel_writes`, `big_writes`.
    """
    import pyarrow.compute as pc  # here, not at import: queries never need it

    cols = {k: [] for k in ("addr", "size", "step", "rip", "source", "value", "value_hi")}
    for batch in trace.files.batches("accesses", [*cols, "is_write"]):
        source = batch.column("source").indices
        keep = pc.and_(pc.not_equal(source, _KERNEL), batch.column("is_write"))
        if not pc.any(keep).as_py():
            continue
        sub = batch.filter(keep)
        for name in cols:
            col = sub.column(name)
            if name == "source":
                col = col.indices
            elif name in ("value", "value_hi"):
                col = pc.fill_null(col, 0)
            cols[name].append(col.to_numpy(zero_copy_only=False))
    syscall_rip = dict(zip(trace.syscalls.column("step").to_pylist(),
                           trace.syscalls.column("rip").to_pylist()))
    big = {k: [] for k in _BIG.names}
    small_kernel = {k: [] for k in cols}
    for row in trace.table("kernel_writes").to_pylist():
        data, step = row["data"], row["step"]
        rip = syscall_rip.get(step, 0)
        if len(data) > MAX_SMALL:
            for k, v in zip(_BIG.names, (step, rip, row["addr"], len(data), data)):
                big[k].append(v)
            continue
        padded = data.ljust(16, b"\0")
        for k, v in zip(cols, (row["addr"], len(data), step, rip, _KERNEL,
                               int.from_bytes(padded[:8], "little"),
                               int.from_bytes(padded[8:], "little"))):
            small_kernel[k].append(v)
    arrays = {}
    for name in cols:
        dtype = np.int8 if name == "source" else np.uint64
        parts = [a.astype(dtype) for a in cols[name]]
        parts.append(np.asarray(small_kernel[name], dtype=dtype))
        arrays[name] = np.concatenate(parts) if parts else np.zeros(0, dtype)
    key = (arrays["addr"] << np.uint64(_KEY_SHIFT)) | arrays["size"]
    order = np.lexsort((arrays["step"], key))  # stable: same step keeps recorded order
    # Steps and RIPs of a static program's run fit 32 bits: half the bytes of the index.
    table = pa.table({"key": key[order], "step": _narrow(arrays["step"][order]),
                      "rip": _narrow(arrays["rip"][order]), "source": arrays["source"][order],
                      "value": arrays["value"][order]})
    # Bytes 8-15 exist only for 16-byte stores and kernel writes of 9-16 bytes: kept apart.
    high_rows = np.flatnonzero(arrays["size"][order] > 8).astype(np.uint64)
    high = pa.table({"row": high_rows, "value_hi": arrays["value_hi"][order][high_rows]},
                    schema=_HIGH)
    directory.mkdir(parents=True, exist_ok=True)
    for name, t in ((SMALL_FILE, table), (HIGH_FILE, high)):
        with pa.OSFile(str(directory / name), "wb") as sink:
            with pa.ipc.new_file(sink, t.schema) as writer:
                writer.write_table(t, max_chunksize=max(t.num_rows, 1))
    big_table = pa.table(big, schema=_BIG).sort_by("step")
    with pa.OSFile(str(directory / BIG_FILE), "wb") as sink:
        with pa.ipc.new_file(sink, _BIG) as writer:
            writer.write_table(big_table)
    n_kernel = len(small_kernel["step"])
    return {"cpu_writes": int(table.num_rows) - n_kernel, "kernel_writes": n_kernel,
            "big_writes": big_table.num_rows}


def _narrow(values: np.ndarray) -> np.ndarray:
    return values.astype(np.uint32) if len(values) and values.max() < 1 << 32 else values


def primitive_view(array: pa.Array, dtype) -> np.ndarray:
    """A zero-copy numpy view of a null-free primitive Arrow array (Array.to_numpy would
    import pandas, which costs a query a third of a second)."""
    buf = array.buffers()[1]
    item = np.dtype(dtype).itemsize
    return np.frombuffer(buf, dtype, count=len(array), offset=array.offset * item)


class WriteIndex:
    """Queries over a built index (memory-mapped; opening it reads almost nothing)."""

    def __init__(self, directory: Path):
        self._source = pa.memory_map(str(directory / SMALL_FILE))
        table = pa.ipc.open_file(self._source).read_all()
        self._n = table.num_rows

        def col(t: pa.Table, name: str) -> np.ndarray:
            dtype = t.schema.field(name).type.to_pandas_dtype()
            if t.num_rows == 0:
                return np.zeros(0, dtype)
            return primitive_view(t.column(name).chunk(0), dtype)

        self.key = col(table, "key")
        self.step = col(table, "step")
        self.rip = col(table, "rip")
        self.source = col(table, "source")
        self.value = col(table, "value")
        high = pa.ipc.open_file(pa.memory_map(str(directory / HIGH_FILE))).read_all()
        self._high_rows = col(high, "row")
        self._high_values = col(high, "value_hi")
        self.big = pa.ipc.open_file(pa.memory_map(str(directory / BIG_FILE))).read_all() \
            .to_pylist()

    def _row(self, i: int) -> Write:
        key = int(self.key[i])
        size = key & ((1 << _KEY_SHIFT) - 1)
        data = int(self.value[i]).to_bytes(8, "little")
        if size > 8:
            j = int(np.searchsorted(self._high_rows, np.uint64(i)))
            data += int(self._high_values[j]).to_bytes(8, "little")
        data = data[:size]
        return Write(step=int(self.step[i]), rip=int(self.rip[i]), addr=key >> _KEY_SHIFT,
                     size=size, source=SOURCES[int(self.source[i])], data=data)

    def next_write(self, addr: int, from_step: int) -> Write | None:
        """The first write into byte `addr` made by a step >= `from_step`, if any."""
        lo_addr = max(addr - (MAX_SMALL - 1), 0)
        lo = np.searchsorted(self.key, np.uint64(lo_addr << _KEY_SHIFT), "left")
        hi = np.searchsorted(self.key, np.uint64((addr + 1) << _KEY_SHIFT), "left")
        best: Write | None = None
        pos = int(lo)
        while pos < hi:  # per (address, size) group, as in `latest_writes`
            key = self.key[pos]
            end = int(np.searchsorted(self.key[pos:hi], key, "right")) + pos
            if (int(key) >> _KEY_SHIFT) + (int(key) & 31) > addr:
                at = int(np.searchsorted(self.step[pos:end], np.uint64(from_step), "left"))
                if at < end - pos and (best is None or int(self.step[pos + at]) < best.step):
                    best = self._row(pos + at)
            pos = end
        for row in self.big:
            if row["step"] >= from_step and row["addr"] <= addr < row["addr"] + row["size"] \
                    and (best is None or row["step"] < best.step):
                best = Write(step=row["step"], rip=row["rip"], addr=row["addr"],
                             size=row["size"], source="kernel", data=row["data"])
        return best

    def latest_writes(self, start: int, length: int, before: int) -> list[Write]:
        """For the bytes [start, start+length): the latest write of each (address, size)
        that touches them, made by a step < `before`. Every byte's last writer is among
        them. In execution order."""
        lo_addr = max(start - (MAX_SMALL - 1), 0)
        lo = np.searchsorted(self.key, np.uint64(lo_addr << _KEY_SHIFT), "left")
        hi = np.searchsorted(self.key, np.uint64((start + length) << _KEY_SHIFT), "left")
        out: list[Write] = []
        # Each distinct key is one (address, size), its rows in step order: per group, the
        # latest row before `before` is found by binary search, so a stack slot written a
        # million times costs two searches, not a scan of its million rows.
        pos = int(lo)
        while pos < hi:
            key = self.key[pos]
            end = int(np.searchsorted(self.key[pos:hi], key, "right")) + pos
            if (int(key) >> _KEY_SHIFT) + (int(key) & 31) > start:
                below = int(np.searchsorted(self.step[pos:end], np.uint64(before), "left"))
                if below:
                    out.append(self._row(pos + below - 1))
            pos = end
        for row in self.big:
            if row["step"] < before and row["addr"] < start + length \
                    and row["addr"] + row["size"] > start:
                out.append(Write(step=row["step"], rip=row["rip"], addr=row["addr"],
                                 size=row["size"], source="kernel", data=row["data"]))
        out.sort(key=lambda w: w.step)
        return out

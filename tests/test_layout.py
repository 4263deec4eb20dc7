"""The stored layout of the event tables' step/rip/old/new columns (tracer/format/layout.py,
format version 3): every uint64 sequence survives it exactly, the recorder's C encoder
writes what the Python one does, and version 2 traces (plain columns) still read the same."""

from __future__ import annotations

import ctypes
import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from analysis_tables import reseal
from conftest import PROGRAMS, record, trace_cli
from tracer import native
from tracer.format import TABLES, TraceFiles, TraceFormatError, file_name
from tracer.format.deltas import _split, decode, encode
from tracer.format.layout import DELTA_COLUMNS, STORED

TOP = (1 << 64) - 1
EXTREMES = np.array([0, TOP, 0, 1 << 63, (1 << 63) - 1, 5, 5, 4, 1 << 32, (1 << 32) - 1,
                     (1 << 31), (1 << 31) - 1, TOP - (1 << 31), 0x7FFF_FFFF_E000, 0x401000],
                    dtype=np.uint64)


def _sequences() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [EXTREMES, np.array([], np.uint64), np.array([TOP], np.uint64),
            rng.integers(0, TOP, 1000, dtype=np.uint64, endpoint=True),
            np.cumsum(rng.integers(0, 3, 1000)).astype(np.uint64)]


@pytest.mark.parametrize("values", _sequences(), ids=["extremes", "empty", "one", "random",
                                                      "steps"])
def test_every_uint64_sequence_round_trips(values):
    n = len(values)
    columns = {f.name: (pa.array(values, pa.uint64()) if f.name in DELTA_COLUMNS["rsp"]
                        else pa.array(["push"] * n, pa.string()).dictionary_encode()
                        .cast(f.type))
               for f in TABLES["rsp"]}
    batch = pa.RecordBatch.from_arrays(list(columns.values()), schema=TABLES["rsp"])
    stored = encode("rsp", batch)
    assert stored.schema.equals(STORED["rsp"])
    assert decode("rsp", 3, stored, "test").equals(batch)


@pytest.mark.parametrize("values", _sequences(), ids=["extremes", "empty", "one", "random",
                                                      "steps"])
def test_the_recorders_c_encoder_writes_what_the_format_defines(values):
    values = np.ascontiguousarray(values)
    n = len(values)
    low, high = np.zeros(n, np.int32), np.zeros(n, np.int32)
    native.load().vm_split(values.ctypes.data_as(ctypes.c_void_p), n, low.ctypes.data,
                           high.ctypes.data)
    want_low, want_high = _split(values)
    assert low.tolist() == want_low.tolist() and high.tolist() == want_high.tolist()


def _trace(tmp_path, name: str):
    out = tmp_path / name
    record(PROGRAMS / "rsp_zoo.asm", out)
    return out


def _as_version_2(trace) -> None:
    """Rewrites a trace as format version 2 stored it: plain uint64 columns."""
    files = TraceFiles(trace)
    for table in DELTA_COLUMNS:
        plain = files.table(table)
        with pa.OSFile(str(trace / file_name(table)), "wb") as sink, \
                pa.ipc.new_stream(sink, TABLES[table]) as writer:
            writer.write_table(plain)
    meta = json.loads((trace / "meta.json").read_text())
    meta["format_version"] = 2
    (trace / "meta.json").write_text(json.dumps(meta))
    reseal(trace)


def test_a_version_2_trace_reads_and_reports_as_before(tmp_path):
    new = _trace(tmp_path, "new")
    old = tmp_path / "old"
    shutil.copytree(new, old)
    _as_version_2(old)
    assert pa.ipc.open_stream(old / "accesses.arrows").schema.equals(TABLES["accesses"])
    for table in TABLES:
        assert TraceFiles(old).table(table).equals(TraceFiles(new).table(table)), table
    infos = [json.loads(trace_cli("info", str(t), "--json").stdout) for t in (new, old)]
    assert infos[0]["format_version"] == 3 and infos[1]["format_version"] == 2
    assert ({k: v for k, v in infos[0].items() if k != "format_version"}
            == {k: v for k, v in infos[1].items() if k != "format_version"})


def test_a_stored_difference_column_with_nulls_is_refused(tmp_path):
    trace = _trace(tmp_path, "t")
    path = trace / "rsp.arrows"
    table = pa.ipc.open_stream(str(path)).read_all()
    column = pa.array([None] + table["step"].to_pylist()[1:], pa.int32())
    forged = table.set_column(0, pa.field("step", pa.int32(), nullable=False), column)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, forged.schema) as w:
        w.write_table(forged)
    reseal(trace)
    with pytest.raises(TraceFormatError, match="nulls in step"):
        TraceFiles(trace).table("rsp")
    done = trace_cli("replay", str(trace), check=False)
    assert done.returncode != 0 and b"Traceback" not in done.stderr
    assert b"nulls in step" in done.stderr + done.stdout

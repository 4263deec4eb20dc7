"""The trace format read by independent readers: every table with plain pyarrow and with
DuckDB (over a streaming reader, as docs/trace-format.md shows), with exactly the stored
schemas of tracer/format/layout.py (the reader's view: tracer.format.TABLES), and the numbers
agreeing with `trace info`."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from cases import all_cases, prepare  # noqa: F401  (prepare is a fixture)
from tracer.format import FORMAT_NAME, FORMAT_VERSION, TABLES, TraceFiles, file_name
from tracer.format.layout import DELTA_COLUMNS, STORED

DOC_TABLES = {"accesses", "rsp", "syscalls", "regions", "kernel_writes", "output", "symbols",
              "lines", "memory_image", "inputs", "exec_counts"}


@pytest.fixture(scope="module")
def run(prepare):
    """A recording that fills every table: brk/mmap (regions), stdout, stdin, SSE."""
    return prepare(next(c for c in all_cases() if c.source.stem == "string_ops"))


@pytest.fixture(scope="module")
def rich_run(prepare):
    return prepare(next(c for c in all_cases() if c.source.stem == "mmap_ops"))


def test_the_documented_tables_are_the_schema_module_tables():
    assert set(TABLES) == DOC_TABLES


@pytest.mark.parametrize("table", sorted(DOC_TABLES))
def test_every_table_reads_with_plain_pyarrow_and_has_its_schema(run, table):
    path = run.trace / file_name(table)
    with pa.ipc.open_stream(path) as reader:
        assert reader.schema.equals(STORED[table], check_metadata=False)
        data = reader.read_all()
    assert data.schema.equals(STORED[table], check_metadata=False)
    # What every reader gets through the format's view: the table's own schema.
    assert TraceFiles(run.trace).table(table).schema.equals(TABLES[table])
    # string_ops pushes nothing and reads no stdin
    if table not in ("inputs", "kernel_writes", "rsp"):
        assert data.num_rows > 0, table


def _documented_decode(batch: pa.RecordBatch, column: str) -> list[int]:
    """docs/trace-format.md's recipe for a difference column, with plain pyarrow + numpy."""
    low = batch.column(column).to_numpy().astype(np.int64)
    high = batch.column(column + "_hi").to_numpy().astype(np.int64)
    return np.cumsum((high << 32) + low, dtype=np.int64).view(np.uint64).tolist()


@pytest.mark.parametrize("table", sorted(DELTA_COLUMNS))
def test_the_documented_recipe_reads_the_difference_columns_as_the_reader_does(
        prepare, table):
    """rsp_zoo: pushes, pops, calls, big RSP moves; plain pyarrow + the doc's recipe gives
    the reader's values, batch by batch."""
    run = prepare(next(c for c in all_cases() if c.source.stem == "rsp_zoo"))
    view = TraceFiles(run.trace).table(table)
    assert view.num_rows > 0
    for column in DELTA_COLUMNS[table]:
        plain = []
        for batch in pa.ipc.open_stream(run.trace / file_name(table)):
            plain += _documented_decode(batch, column)
        assert plain == view[column].to_pylist(), column


@pytest.mark.parametrize("table", sorted(DOC_TABLES))
def test_every_table_reads_with_duckdb_over_a_stream(run, table):
    expected = pa.ipc.open_stream(run.trace / file_name(table)).read_all().num_rows
    reader = pa.ipc.open_stream(run.trace / file_name(table))  # noqa: F841 (DuckDB scans it)
    assert duckdb.sql("select count(*) from reader").fetchall() == [(expected,)]


def test_duckdb_counts_agree_with_trace_info(rich_run):
    reader = pa.ipc.open_stream(rich_run.trace / "accesses.arrows")  # noqa: F841
    rows = duckdb.sql("select source, is_write, count(*) from reader group by all").fetchall()
    by_source = {}
    for source, is_write, n in rows:
        by_source.setdefault(source, {"read": 0, "write": 0})["write" if is_write else "read"] = n
    info = rich_run.info
    assert by_source == info["accesses"]["by_source"]
    assert sum(n for _, w, n in rows if w) == info["accesses"]["write"]


def test_syscalls_table_agrees_with_trace_info(rich_run):
    table = pa.ipc.open_stream(rich_run.trace / "syscalls.arrows").read_all().to_pylist()
    assert [{"step": r["step"], "name": r["name"], "args": r["args"], "ret": r["ret"]}
            for r in table] == rich_run.info["syscalls"]
    mmaps = [r for r in table if r["name"] == "mmap" and r["ret"] >= 0]
    for r in mmaps:  # every successful mmap says what it mapped
        changes = json.loads(r["detail"])
        assert any(c["action"] == "map" and c["start"] == r["ret"] for c in changes)


def test_values_are_little_endian_bytes_of_the_access(rich_run):
    """A store's value is what the next load of the same bytes reads."""
    table = pa.ipc.open_stream(rich_run.trace / "accesses.arrows").read_all().to_pylist()
    last_written = {}
    for r in table:
        if r["source"] == "kernel" or r["size"] != 8:
            continue
        if r["is_write"]:
            last_written[r["addr"]] = r["value"]
        elif r["addr"] in last_written:
            assert r["value"] == last_written[r["addr"]]


def test_a_16_byte_access_keeps_both_halves_of_its_value(prepare):
    run = prepare(next(c for c in all_cases() if c.source.stem == "sse"))
    table = pa.ipc.open_stream(run.trace / "accesses.arrows").read_all().to_pylist()
    wide = [r for r in table if r["size"] == 16]
    assert len(wide) == 6
    load = wide[0]  # movdqu xmm0, [src + 3]
    data = load["value"].to_bytes(8, "little") + load["value_hi"].to_bytes(8, "little")
    assert data == b"3456789abcdefghi"
    assert all(r["value_hi"] is None for r in table if r["size"] != 16)


def test_meta_json_names_the_format_and_version(run):
    meta = json.loads((run.trace / "meta.json").read_text())
    assert meta["format"] == FORMAT_NAME and meta["format_version"] == FORMAT_VERSION
    assert meta["complete"] is True
    assert run.info["format_version"] == FORMAT_VERSION


def test_docs_list_every_table_and_column():
    from conftest import ROOT

    doc = (ROOT / "docs" / "trace-format.md").read_text()
    for table, schema in TABLES.items():
        assert f"`{file_name(table)}`" in doc, table
        for name in schema.names:
            assert f"`{name}`" in doc, f"{table}.{name}"


def test_the_stop_reasons_are_the_documented_strings():
    """meta.json keeps the strings it always held; the doc lists each, and which truncate."""
    import re

    from conftest import ROOT
    from tracer.ending import TRUNCATING_STOPS, StopReason

    assert [s.value for s in StopReason] == [
        "exit", "fault", "max-steps", "max-trace-size", "min-free-disk", "interrupted",
        "unsupported-syscall", "error", "stopped"]
    doc = (ROOT / "docs" / "trace-format.md").read_text()
    listed = doc[doc.index("`end` holds: `stop_reason`"):doc.index("`exit_code` (int")]
    assert set(re.findall(r"`([a-z-]+)`", listed)) - {"end", "stop_reason", "min_free_mb"} \
        == {s.value for s in StopReason}
    truncating = doc[doc.index("the user cut the run short:"):doc.index("the trace then holds")]
    assert set(re.findall(r"`([a-z-]+)`", truncating)) == set(TRUNCATING_STOPS)

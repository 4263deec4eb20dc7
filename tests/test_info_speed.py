"""`trace info` answers from meta.json whatever the trace's size: it reads no event table
(issue 13). The totals it shows come from the recorder and equal a scan of the tables."""

import json
import os
import sys
import time

from conftest import PROGRAMS, ROOT, trace_cli

sys.path.insert(0, str(ROOT / "bench"))
import verify  # noqa: E402


def test_info_reads_no_event_table_of_a_big_trace(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import tracer.format.reader as reader
    from vmtrace.cli import app
    from vmtrace.commands import info as info_command

    trace = tmp_path / "long"
    trace_cli("record", str(PROGRAMS / "long_loop.asm"), "-o", str(trace), "-q")
    meta = json.loads((trace / "meta.json").read_text())["end"]
    assert meta["accesses"] == 2_000_000 and meta["rsp_changes"] == 2_000_000
    mapped = []
    real = reader.map_regular

    def spy(fd):
        mapped.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        return real(fd)

    monkeypatch.setattr(reader, "map_regular", spy)
    # 4 M rows: past the bound in rows, although the files are small (format 3 stores
    # ~3 M events per MB); a trace of many GB is past it in both.
    assert meta["accesses"] + meta["rsp_changes"] > info_command.VERIFY_EVENT_ROWS_UP_TO
    started = time.monotonic()
    result = CliRunner().invoke(app, ["info", str(trace)])
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "reads: 1,000,000   writes: 1,000,000" in result.output
    assert "8 bytes" in " ".join(result.output.split())  # the max stack depth
    assert "accesses.arrows" not in mapped and "rsp.arrows" not in mapped, mapped
    assert "syscalls.arrows" in mapped  # the small tables are still read and checked
    assert took < 30  # generous: the point is that it does not grow with the trace


def test_info_of_a_trace_without_totals_still_counts_from_the_tables(tmp_path):
    trace = tmp_path / "old"
    trace_cli("record", str(PROGRAMS / "stack_ops.asm"), "-o", str(trace), "-q")
    new = json.loads(trace_cli("info", str(trace), "--json").stdout)
    meta = json.loads((trace / "meta.json").read_text())
    for key in ("access_counts", "lowest_rsp"):
        del meta["end"][key]
    (trace / "meta.json").write_text(json.dumps(meta))
    old = json.loads(trace_cli("info", str(trace), "--json").stdout)
    assert old["accesses"] == new["accesses"]
    assert old["max_stack_depth"] == new["max_stack_depth"]


def test_recorded_totals_equal_a_scan_of_the_tables(tmp_path):
    for name in ("rsp_zoo", "string_rep", "sse", "stack_kernel_grows", "every_table",
                 "bad_pointer"):
        trace = verify.record_one(PROGRAMS / f"{name}.asm", tmp_path / name)
        assert verify.check_totals(trace) == [], name


def test_info_loads_only_its_own_command_and_no_query_engine(tmp_path):
    # Its time is start-up (imports) plus meta.json: the other commands' modules and DuckDB
    # (which `trace info` never queries) stay unloaded.
    import subprocess

    trace = tmp_path / "t"
    trace_cli("record", str(PROGRAMS / "stack_ops.asm"), "-o", str(trace), "-q")
    code = ("import sys, json\nfrom vmtrace.cli import main\ntry:\n"
            "    main(['info', sys.argv[1]])\nexcept SystemExit as exc:\n    assert not exc.code\n"
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, str(trace)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    commands = {m for m in loaded if m.startswith("vmtrace.commands.")}
    assert commands == {"vmtrace.commands.info"}, commands
    assert "duckdb" not in loaded

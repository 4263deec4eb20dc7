"""`trace batch`, `trace sql` and `trace compare` end to end: a dozen programs (the example
class and broken ones) recorded as tasks of a real local Ray, the Parquet dataset read back
by DuckDB, pyarrow.dataset and polars and checked against each trace's own `trace info`,
and the compare page clicked through in Chromium.

Every test that runs Ray is in the xdist group "ray": one pytest worker runs them all, on
the one local Ray (2 CPUs) this module starts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, PROGRAMS, ROOT

CLASS = EXAMPLES / "class"
BATCH = PROGRAMS / "batch"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ray_group = pytest.mark.xdist_group("ray")

# program id -> the status its row must have.
EXPECTED = {
    "alice": "ok", "grace": "ok", "heidi": "ok", "erin": "ok",
    "dave": "fault",                  # recursion without a base case: stack overflow
    "frank": "build-error",           # does not assemble
    "div_zero": "fault",              # SIGFPE
    "fork": "unsupported-syscall",
    "argv_env": "ok",
    "read_stdin": "ok",
    "spin": "max-steps",
    "notes": "bad-program",           # not an ELF
}


def cli(*args: str, capsys=None) -> tuple[int, str, str]:
    """Runs `trace ARGS` in this process (on this module's Ray); returns (status, out, err)."""
    from vmtrace.cli import main

    status = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return status, out, err


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def dataset(local_ray, tmp_path_factory):
    """The class and six broken or odd programs, recorded once for the module."""
    out = tmp_path_factory.mktemp("batch") / "class"
    stdin = tmp_path_factory.mktemp("stdin") / "input.txt"
    stdin.write_bytes(b"hello from stdin\n")
    from vmtrace.cli import main

    try:
        main(["batch", str(CLASS), str(PROGRAMS / "div_zero.asm"),
              str(PROGRAMS / "limits" / "fork.asm"), str(PROGRAMS / "argv_env.asm"),
              str(PROGRAMS / "read_stdin.asm"), str(BATCH / "spin.asm"),
              str(BATCH / "notes.txt"), "-o", str(out), "--max-steps", "300000",
              "--stdin", str(stdin), "--", "first", "second"])
    except SystemExit as exc:
        assert not exc.code, exc.code
    return out


def info_json(trace: Path, capsys) -> dict:
    status, out, _ = cli("info", trace, "--json", capsys=capsys)
    assert status == 0
    return json.loads(out)


@ray_group
def test_every_program_has_a_row_and_failures_do_not_stop_the_batch(dataset, capsys):
    status, out, _ = cli("sql", dataset, "SELECT program, status, error, exit_code, signal, "
                         "stack_overflow FROM programs ORDER BY program", "--json",
                         capsys=capsys)
    assert status == 0
    rows = {r["program"]: r for r in json.loads(out)}
    assert {p: r["status"] for p, r in rows.items()} == EXPECTED
    assert "frank.asm:7" in rows["frank"]["error"]
    assert "fork (syscall 57)" in rows["fork"]["error"]
    assert rows["dave"]["signal"] == "SIGSEGV" and rows["dave"]["stack_overflow"] is True
    assert rows["div_zero"]["signal"] == "SIGFPE"
    assert rows["argv_env"]["exit_code"] == 3   # argc: the program and the two -- ARGS
    assert "not an ELF" in rows["notes"]["error"] or "ELF" in rows["notes"]["error"]
    for name in ("frank", "notes"):
        assert not (dataset / "traces" / name).exists()


@ray_group
def test_rows_match_each_traces_own_trace_info(dataset, capsys):
    import duckdb
    import polars as pl
    import pyarrow as pa
    import pyarrow.dataset as ds

    # Read with no vmtrace code: the partition's type is given, as docs/trace-format.md says.
    program = ds.partitioning(pa.schema([("program", pa.string())]), flavor="hive")
    programs = ds.dataset(dataset / "programs", format="parquet", partitioning=program)
    by_arrow = {r["program"]: r for r in programs.to_table().to_pylist()}
    accesses = pl.scan_parquet(dataset / "accesses" / "*" / "*.parquet", hive_partitioning=True,
                               hive_schema={"program": pl.String})
    by_polars = dict(accesses.group_by("program").agg(pl.len()).collect().iter_rows())
    con = duckdb.connect()
    stack = dict(con.sql(
        f"SELECT program, max(depth) FROM read_parquet('{dataset}/stack/*/*.parquet', "
        "hive_partitioning = true, hive_types = {'program': VARCHAR}) GROUP BY 1").fetchall())
    syscalls = dict(con.sql(
        f"SELECT program, count(*) FROM read_parquet('{dataset}/syscalls/*/*.parquet', "
        "hive_partitioning = true, hive_types = {'program': VARCHAR}) GROUP BY 1").fetchall())
    recorded = [p for p, s in EXPECTED.items() if s not in ("build-error", "bad-program")]
    for name in recorded:
        info = info_json(dataset / by_arrow[name]["trace"], capsys)
        row = by_arrow[name]
        assert row["instructions"] == info["instructions"], name
        assert (row["reads"], row["writes"]) == (info["accesses"]["read"],
                                                 info["accesses"]["write"]), name
        assert row["max_stack_depth"] == info["max_stack_depth"], name
        assert row["syscalls"] == len(info["syscalls"]) == syscalls.get(name, 0), name
        assert row["exit_code"] == info["exit"]["code"], name
        reads_writes = info["accesses"]["read"] + info["accesses"]["write"]
        assert by_polars.get(name, 0) == reads_writes, name
        assert max(stack.get(name) or 0, 0) == info["max_stack_depth"], name
    assert by_arrow["heidi"]["findings_leak"] >= 1 and by_arrow["grace"]["findings_leak"] == 0
    assert by_arrow["erin"]["findings_wide_access"] >= 1
    assert by_arrow["alice"]["findings"] == 0


@ray_group
def test_sql_views_and_formats(dataset, capsys):
    status, out, _ = cli("sql", dataset, """
        SELECT (SELECT count(*) FROM programs) AS p,
               (SELECT count(DISTINCT program) FROM accesses) AS a,
               (SELECT count(*) FROM programs WHERE reads + writes > 0) AS with_accesses,
               (SELECT count(DISTINCT program) FROM syscalls) AS s,
               (SELECT count(*) FROM programs WHERE syscalls > 0) AS with_syscalls,
               (SELECT count(DISTINCT program) FROM stack) AS k""", "--json", capsys=capsys)
    assert status == 0
    counts = json.loads(out)[0]
    assert counts["p"] == 12
    assert counts["a"] == counts["with_accesses"] >= 6
    assert counts["s"] == counts["with_syscalls"] >= 6
    assert 6 <= counts["k"] <= 10
    status, out, _ = cli("sql", dataset, "SELECT program, status FROM programs WHERE "
                         "program IN ('alice', 'frank') ORDER BY 1", "--csv", capsys=capsys)
    assert out.splitlines() == ['"program","status"', '"alice","ok"', '"frank","build-error"']
    status, out, err = cli("sql", dataset, "SELECT no_such_column FROM programs",
                           capsys=capsys)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert 'Referenced column "no_such_column" not found' in err
    status, _, err = cli("sql", dataset, "SELEC 1", capsys=capsys)
    assert status == 2 and "syntax error" in err.lower()
    status, _, err = cli("sql", dataset.parent, "SELECT 1", capsys=capsys)
    assert status == 2 and "not a trace batch dataset" in err


@ray_group
def test_resume_skips_what_is_recorded_and_redoes_what_changed(local_ray, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("alice.asm", "frank.asm"):
        shutil.copy(CLASS / name, inputs / name)
    out = tmp_path / "ds"
    status, _, err = cli("batch", inputs, "-o", out, "--no-reports", capsys=capsys)
    assert status == 0 and "1 recorded, 1 not ok, 0 skipped" in err
    first = (out / "programs" / "program=alice" / "part-0.parquet").stat().st_mtime_ns
    status, _, err = cli("batch", inputs, "-o", out, "--no-reports", capsys=capsys)
    assert status == 0 and "0 recorded, 0 not ok, 2 skipped" in err
    assert (out / "programs" / "program=alice" / "part-0.parquet").stat().st_mtime_ns == first
    # frank fixed: only frank is recorded again.
    (inputs / "frank.asm").write_text((CLASS / "alice.asm").read_text())
    status, _, err = cli("batch", inputs, "-o", out, "--no-reports", capsys=capsys)
    assert status == 0 and "1 recorded, 0 not ok, 1 skipped" in err
    status, out_json, _ = cli("sql", out, "SELECT program, status FROM programs ORDER BY 1",
                              "--json", capsys=capsys)
    assert json.loads(out_json) == [{"program": "alice", "status": "ok"},
                                    {"program": "frank", "status": "ok"}]


@ray_group
def test_time_limit_is_a_row_and_parquet_goes_to_a_uri(local_ray, tmp_path, capsys):
    import pyarrow.dataset as ds

    target = tmp_path / "elsewhere"
    status, _, err = cli("batch", BATCH / "spin.asm", "-o", tmp_path / "ds", "--timeout", "1",
                         "--parquet", target.as_uri(), "--no-reports", capsys=capsys)
    assert status == 0, err
    assert "spin: time-limit: stopped after the --timeout of 1 s" in err
    rows = ds.dataset(target / "programs", format="parquet",
                      partitioning="hive").to_table().to_pylist()
    # The limit covers the build too: under load the run may be stopped before its first step.
    assert rows[0]["status"] == "time-limit" and rows[0]["instructions"] is not None
    assert (tmp_path / "ds" / "traces" / "spin" / "meta.json").is_file()
    status, out, _ = cli("sql", target.as_uri(), "SELECT status FROM programs", "--json",
                         capsys=capsys)
    assert json.loads(out) == [{"status": "time-limit"}]


@ray_group
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_compare_page_sorts_links_and_has_no_console_errors(dataset, tmp_path, capsys):
    sync_api = pytest.importorskip("playwright.sync_api")
    page_file = tmp_path / "pages" / "class.html"
    page_file.parent.mkdir()
    status, _, err = cli("compare", dataset, "-o", page_file, capsys=capsys)
    assert status == 0, err
    html = page_file.read_text()
    assert "<script src=" not in html and "cdn.plot.ly" not in html
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri())
            page.wait_for_selector("body[data-charts-ready=yes]", timeout=60_000)
            assert page.locator(".main-svg").count() >= 4     # plotly drew every chart
            names = page.locator("#programs-table tbody tr td:first-child")
            assert names.all_inner_texts() == sorted(EXPECTED)
            header = page.locator("#programs-table th", has_text="max stack depth")
            header.click()
            ascending = names.all_inner_texts()
            assert ascending[-3:-2] == ["dave"] and ascending[-2:] in (
                ["frank", "notes"], ["notes", "frank"])  # no trace: empty cells last
            header.click()
            assert names.all_inner_texts()[0] == "dave"
            links = page.locator("#programs-table a")
            hrefs = links.evaluate_all("els => els.map(e => e.href)")
            assert len(hrefs) == 10   # every recorded program, not frank or notes
            for href in hrefs:
                assert Path(href.removeprefix("file://")).is_file(), href
            with page.expect_navigation():
                page.locator("#programs-table a", has_text="heidi").click()
            assert page.url.endswith("/traces/heidi.report.html")
            page.wait_for_selector("body[data-charts-ready=yes]", timeout=60_000)
            assert "heap block never freed" in page.content()
            assert errors == []
        finally:
            browser.close()


@ray_group
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime")
def test_spark_sql_reads_the_dataset(dataset):
    pyspark_sql = pytest.importorskip("pyspark.sql", reason="pyspark is not installed "
                                      "(pip install pyspark; .ci/run installs it)")
    spark = (pyspark_sql.SparkSession.builder.master("local[1]").appName("vmtrace-test")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
             .getOrCreate())
    try:
        spark.read.parquet(str(dataset / "programs")).createOrReplaceTempView("programs")
        spark.read.parquet(str(dataset / "accesses")).createOrReplaceTempView("accesses")
        rows = spark.sql("SELECT p.program, p.status, p.reads + p.writes AS n, count(a.step) AS "
                         "rows FROM programs p LEFT JOIN accesses a ON a.program = p.program "
                         "GROUP BY p.program, p.status, p.reads, p.writes").collect()
    finally:
        spark.stop()
    by_program = {r["program"]: r for r in rows}
    assert {p: r["status"] for p, r in by_program.items()} == EXPECTED
    for r in rows:
        assert r["rows"] == (r["n"] or 0), r


def test_batch_without_ray_prints_the_pip_command(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from vmtrace.cli import main\n"
            f"main(['batch', {str(CLASS)!r}, '-o', {str(tmp_path / 'ds')!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: trace batch needs Ray: pip install 'vmtrace[batch]' (or: pip install ray)"]
    assert not (tmp_path / "ds").exists()


def test_program_ids_are_short_unique_and_safe(tmp_path):
    from analysis.dataset import valid_program_id
    from vmtrace.batch.inputs import program_ids

    for rel in ("alice/main.c", "bob/main.c", "bob/main.asm", "carol/x y.asm", "..odd.asm"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    ids = program_ids([tmp_path / "alice/main.c", tmp_path / "bob/main.c",
                       tmp_path / "bob/main.asm"])
    assert ids == ["alice-main.c", "bob-main.c", "bob-main.asm"]
    assert program_ids([tmp_path / "carol/x y.asm", tmp_path / "..odd.asm"]) == ["x_y", "odd"]
    assert all(valid_program_id(i) for i in ids)
    assert not valid_program_id("..") and not valid_program_id("a/b")


def test_a_dataset_path_holding_other_files_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    done = subprocess.run([sys.executable, "-m", "vmtrace.cli", "batch", str(CLASS / "alice.asm"),
                           "-o", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 2 and "mine.txt, which trace batch did not write" in done.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_the_dataset_and_compare_modules_load_neither_emulator_nor_ray():
    code = ("import sys, json, analysis.dataset, analysis.compare, vmtrace.cli\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=120)
    assert not set(json.loads(done.stdout)) & {"unicorn", "capstone", "ray"}


def test_compare_escapes_what_programs_and_compilers_wrote(tmp_path, capsys):
    # Rows written directly (no Ray): a compiler message and a source name are untrusted.
    from analysis.dataset import DatasetLocation, DatasetWriter, failed_row

    writer = DatasetWriter(DatasetLocation.parse(tmp_path / "ds"))
    evil = "<img src=x onerror=alert(1)>"
    writer.write_row("evil", failed_row(f"{evil}.asm", "asm", "build-error",
                                        f"{evil}.asm:1: error: </script>", "0" * 64))
    status, _, err = cli("compare", tmp_path / "ds", capsys=capsys)
    assert status == 0, err
    html = (tmp_path / "ds" / "compare.html").read_text()
    assert evil not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "</script>.asm" not in html
    status, out, _ = cli("sql", tmp_path / "ds", "SELECT program, status FROM programs",
                         "--json", capsys=capsys)
    assert json.loads(out) == [{"program": "evil", "status": "build-error"}]

"""`trace sql`: one DuckDB query over a `trace batch` dataset, printed as a table, JSON or
CSV. The views are `programs`, `accesses`, `syscalls` and `stack`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

MAX_SHOWN = 200


def sql(
    dataset: Annotated[str, typer.Argument(
        help="A dataset written by `trace batch` (a directory or a URI).")],
    query: Annotated[str, typer.Argument(
        help="SQL over the views programs, accesses, syscalls and stack (each has a "
        "program column).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of row objects.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV with a header line.")
    ] = False,
) -> None:
    """Query a batch dataset with DuckDB, e.g.
    trace sql class "SELECT program, status, max_stack_depth FROM programs ORDER BY 3 DESC".
    """
    import duckdb

    from analysis.dataset import DatasetError, connect

    if as_json and as_csv:
        raise DatasetError("choose one of --json and --csv")
    con = connect(dataset)
    try:
        try:
            result = con.sql(query)
            if result is None:  # a statement, not a query: nothing to print
                return
            # to_arrow_reader is DuckDB 1.4's name for fetch_record_batch.
            fetch = getattr(result, "to_arrow_reader", None) or result.fetch_record_batch
            reader = fetch(10_000)
            if as_json:
                _print_json(reader)
            elif as_csv:
                _print_csv(reader)
            else:
                _print_table(reader)
        except duckdb.Error as exc:
            # DuckDB's own message names the column or the syntax error: one line of it.
            raise DatasetError(f"the query failed: {' '.join(str(exc).split())}") from None
    finally:
        con.close()


def _print_json(reader) -> None:
    """A JSON list of row objects, streamed (a query may return millions of rows)."""
    import json

    out = sys.stdout
    out.write("[")
    first = True
    for batch in reader:
        for row in batch.to_pylist():
            out.write(("" if first else ",\n") + json.dumps(row, default=str))
            first = False
    out.write("]\n")
    out.flush()


def _print_csv(reader) -> None:
    import pyarrow.csv as pacsv

    sys.stdout.flush()
    with pacsv.CSVWriter(sys.stdout.buffer, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    sys.stdout.buffer.flush()


def _print_table(reader) -> None:
    """A terminal table of the first MAX_SHOWN rows (the rest are counted)."""
    from rich.console import Console
    from rich.table import Table

    from vmtrace.terminal import safe

    shown = Table(show_lines=False)
    for name in reader.schema.names:
        shown.add_column(safe(name))
    total = 0
    for batch in reader:
        for row in batch.to_pylist()[:max(0, MAX_SHOWN - total)]:
            shown.add_row(*("" if v is None else safe(str(v)) for v in row.values()))
        total += batch.num_rows
    Console(highlight=False).print(shown)
    more = f" (the first {MAX_SHOWN:,} shown; --csv or --json for all)" if total > MAX_SHOWN else ""
    Console(stderr=True, highlight=False).print(f"{total:,} row(s){more}")


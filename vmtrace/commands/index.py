"""`trace index`: build the replay index beside a trace (the queries build it on demand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vmtrace.terminal import make_console


def index(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    every: Annotated[Optional[int], typer.Option(
        "--every", min=1, help="Steps between keyframes (default 65,536).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build the keyframes and write index that make state/stack/mem/who-wrote fast."""
    from analysis import open_trace
    from tracer.format.cache import cache_dir
    from timetravel import build_index

    t = open_trace(trace)
    info = build_index(t, every=every) if every else build_index(t)
    if as_json:
        print(json.dumps({"directory": str(cache_dir(t.files)), **info}, indent=2))
        return
    make_console().print(
        f"index of {trace} in {cache_dir(t.files)}: {info['keyframes']} keyframes every "
        f"{info['every']:,} steps, {info['pages']:,} distinct pages, "
        f"{info['cpu_writes'] + info['kernel_writes']:,} writes indexed; "
        f"{info['bytes'] / 1e6:.1f} MB, built in "
        f"{info['keyframe_seconds'] + info['write_index_seconds']:.2f} s")

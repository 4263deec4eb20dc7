"""`trace view`: the time-travel viewer in the browser (served on loopback), or exported
as a folder that works from file://."""

from __future__ import annotations

import socket
import webbrowser
from pathlib import Path
from typing import Annotated, Optional

import typer

from tracer.errors import TracerError
from vmtrace.commands.report import AllocatorOption
from vmtrace.terminal import make_console, safe

console = make_console(stderr=True)
LOOPBACK = "127.0.0.1"


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one), so that the URL printed is the real one.

    Raises:
        TracerError: the port is taken or the host is not this machine's.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise TracerError(f"cannot listen on {host}:{port}: {exc.strerror} (--port 0 picks "
                          "a free port)") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def view(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one).")] = 0,
    no_open: Annotated[bool, typer.Option(
        "--no-open", help="Do not open a browser; just print the URL.")] = False,
    host: Annotated[Optional[str], typer.Option(
        "--host", help="Listen on this address instead of 127.0.0.1. Anyone who can reach "
        "it can read the trace.")] = None,
    allocator: AllocatorOption = None,
    export: Annotated[Optional[Path], typer.Option(
        "--export", help="Write a folder that works from file:// (no server) instead: "
        "DIR/index.html, for a small trace.")] = None,
) -> None:
    """Step through a recorded run in the browser: source, registers, stack, memory map,
    memory, heap and output at every step, with a timeline to seek on."""
    from vmtrace.commands.materialize import materialise_first

    materialise_first(trace)  # the server answers any question: the events first
    if export is not None:
        from vmtrace.viewer.export import export_viewer

        index = export_viewer(trace, export, allocator)
        console.print(f"viewer written: {safe(index)} (open it in a browser; "
                      "index.html?step=N opens at step N)")
        return
    import uvicorn

    from vmtrace.viewer.app import open_app

    bind = host or LOOPBACK
    allowed = None
    if host is not None and host != LOOPBACK:
        console.print(f"[yellow]warning:[/] listening on {safe(host)}: anyone who can reach "
                      "this address can read the trace and its program")
        allowed = ["*"]
    app = open_app(trace, allocator, allowed)
    sock = _listen(bind, port)
    shown = f"[{bind}]" if ":" in bind else bind
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    print(f"vmtrace view: {url}  (Ctrl-C stops it)", flush=True)
    if not no_open and not webbrowser.open(url):
        console.print("no browser could be started here: open the URL above yourself")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()

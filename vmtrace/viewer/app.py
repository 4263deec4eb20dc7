"""The viewer's web app: the page, its assets and the JSON API (docs/viewer.md), on one
`ViewerSession`. Read-only; no path from a request reaches the file system except the
package's own assets, named in `ASSETS`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tracer.errors import TracerError
from vmtrace.viewer.session import ViewerError, ViewerSession

# name -> (where it is, content type). plotly.js comes from the plotly wheel.
ASSETS = {
    "viewer.js": ("vmtrace.viewer", "assets/viewer.js", "text/javascript"),
    "viewer.css": ("vmtrace.viewer", "assets/viewer.css", "text/css"),
    "plotly.min.js": ("plotly", "package_data/plotly.min.js", "text/javascript"),
}
INDEX = ("vmtrace.viewer", "assets/index.html")
# The page runs only its own scripts; plotly sets inline styles.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def asset_bytes(package: str, name: str) -> bytes:
    return resources.files(package).joinpath(name).read_bytes()


def _int(request: Request, name: str, default: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None:
        if default is None:
            raise ViewerError(f"the request needs ?{name}=")
        return default
    try:
        return int(text, 0)
    except ValueError:
        raise ViewerError(f"{name} must be a whole number, not {text[:40]!r}") from None


def _text(request: Request, name: str) -> str:
    text = request.query_params.get(name)
    if not text:
        raise ViewerError(f"the request needs ?{name}=")
    return text


def build_app(session: ViewerSession, allowed_hosts: list[str] | None = None) -> Starlette:
    """The app serving one trace.

    Args:
        session: the open trace.
        allowed_hosts: Host headers accepted (a page on another site cannot reach the API
            through a DNS name that resolves to 127.0.0.1).
    """

    def page(_request: Request) -> Response:
        return Response(asset_bytes(*INDEX), media_type="text/html; charset=utf-8",
                        headers=SECURITY_HEADERS)

    def asset(request: Request) -> Response:
        entry = ASSETS.get(request.path_params["name"])
        if entry is None:
            raise HTTPException(404, "no such asset")
        package, name, kind = entry
        return Response(asset_bytes(package, name), media_type=kind, headers=SECURITY_HEADERS)

    def api(handler):
        def endpoint(request: Request) -> Response:
            try:
                body = handler(request)
            except ViewerError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400,
                                    headers=SECURITY_HEADERS)
            except TracerError as exc:  # the trace cannot answer (damaged, inconsistent)
                return JSONResponse({"error": str(exc)}, status_code=422,
                                    headers=SECURITY_HEADERS)
            return JSONResponse(body, headers=SECURITY_HEADERS)
        return endpoint

    def memory_args(request: Request) -> tuple[int, str, int]:
        return (_int(request, "step"), _text(request, "addr"), _int(request, "len", 256))

    def view(request: Request) -> dict:
        """Everything the page redraws at a step, in one round trip."""
        step = _int(request, "step")
        out = {"state": session.state(step), "stack": session.stack(step),
               "disassembly": session.disassembly(step), "output": session.output(step)}
        addr = request.query_params.get("addr")
        if addr:
            try:
                out["memory"] = session.memory(step, addr, _int(request, "len", 256))
            except ViewerError as exc:  # the rest of the view still stands
                out["memory"] = {"error": str(exc)}
        if request.query_params.get("heap") == "1":
            out["heap"] = session.heap(step)
        return out

    def seek(request: Request) -> dict:
        direction = request.query_params.get("dir", "next")
        if direction not in ("next", "prev"):
            raise ViewerError(f"dir is next or prev, not {direction[:20]!r}")
        target = session.seek(_int(request, "step"), _text(request, "what"),
                              direction == "next", request.query_params.get("addr"))
        return {"step": target.step, "what": target.what}

    routes = [
        Route("/", page),
        Route("/assets/{name}", asset),
        Route("/api/meta", api(lambda r: session.meta())),
        Route("/api/timeline", api(lambda r: session.timeline())),
        Route("/api/source", api(lambda r: session.source())),
        Route("/api/state", api(lambda r: session.state(_int(r, "step")))),
        Route("/api/stack", api(lambda r: session.stack(_int(r, "step")))),
        Route("/api/disassembly", api(lambda r: session.disassembly(_int(r, "step")))),
        Route("/api/output", api(lambda r: session.output(_int(r, "step")))),
        Route("/api/heap", api(lambda r: session.heap(_int(r, "step")))),
        Route("/api/memory", api(lambda r: session.memory(*memory_args(r)))),
        Route("/api/who-wrote", api(lambda r: session.who_wrote(_int(r, "step"),
                                                                _text(r, "addr")))),
        Route("/api/seek", api(seek)),
        Route("/api/view", api(view)),
    ]

    async def not_found(_request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                            headers=SECURITY_HEADERS)

    middleware = [Middleware(TrustedHostMiddleware,
                             allowed_hosts=allowed_hosts or ["127.0.0.1", "localhost"])]
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={HTTPException: not_found})


def open_app(trace_path: Path, allocator: str | None = None,
             allowed_hosts: list[str] | None = None) -> Starlette:
    """The app for a trace directory (its replay index built first if missing)."""
    return build_app(ViewerSession(trace_path, allocator), allowed_hosts)

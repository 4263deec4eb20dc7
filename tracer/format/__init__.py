"""THE trace format shared by the record and read sides. Imports pyarrow only.

The names below load on first use: a recording imports only the writer's side (the reader
pulls in pyarrow.compute and numpy, which `trace record` does not need at start-up)."""

from tracer.format.schema import FORMAT_NAME, FORMAT_VERSION, TABLES, file_name

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "TABLES", "TraceFiles", "TraceFormatError",
           "TraceMeta", "file_name"]

_LAZY = {"TraceFiles": "tracer.format.reader", "TraceFormatError": "tracer.format.errors",
         "TraceMeta": "tracer.format.meta"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

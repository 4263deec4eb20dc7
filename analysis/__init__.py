"""Read side of vmtrace: turns a recorded trace into tables, charts and reports.

Reads traces only through `tracer.format`; never imports the emulator (unicorn, capstone).
"""

__all__ = ["Trace", "open_trace"]


def __getattr__(name: str):
    # Loaded on first use: `trace record` imports analysis.errors only, and should not pay
    # for pyarrow/duckdb set-up it does not need before the run starts.
    if name == "Trace":
        from analysis.trace import Trace

        return Trace
    if name == "open_trace":
        from analysis.notebook import open_trace

        return open_trace
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")

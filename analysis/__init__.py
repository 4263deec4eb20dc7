"""Read side of vmtrace: turns a recorded trace into tables, charts and reports.

Reads traces only through `tracer.format`; never imports the emulator (unicorn, capstone).
"""

__all__ = ["Trace", "open_trace"]


def __getattr__(name: str):
    # Loaded on first use: `trace record` imports analysis.errors only, and should not pay
    # for pyarrow/duckdb set-up it does not need before the run starts.
    if name in __all__:
        from analysis import trace

        return getattr(trace, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")

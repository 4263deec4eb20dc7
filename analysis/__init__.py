"""Read side of vmtrace: turns a recorded trace into tables, charts and reports.

Reads traces only through `tracer.format`; never imports the emulator (unicorn, capstone).
"""

from analysis.trace import Trace, open_trace

__all__ = ["Trace", "open_trace"]

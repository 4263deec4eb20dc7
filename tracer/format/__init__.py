"""THE trace format shared by the record and read sides. Imports pyarrow only."""

from tracer.format.reader import TraceFiles, TraceFormatError, TraceMeta
from tracer.format.schema import FORMAT_NAME, FORMAT_VERSION, TABLES, file_name

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "TABLES", "TraceFiles", "TraceFormatError",
           "TraceMeta", "file_name"]

"""The one error of the trace format: a directory that is not a readable vmtrace trace."""


class TraceFormatError(Exception):
    """The directory is not a readable vmtrace trace; the message says why."""

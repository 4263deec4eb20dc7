"""The one error of the trace format: a directory that is not a readable vmtrace trace."""


class TraceFormatError(Exception):
    """The directory is not a readable vmtrace trace; the message says why."""


class EventsPending(TraceFormatError):
    """The trace was recorded with `--fast` and its event tables (accesses, rsp,
    exec_counts) are not materialised yet: `trace materialize` rebuilds them."""

    def __init__(self, message: str, path):
        super().__init__(message)
        self.path = path  # the trace directory

"""The read side's errors: each carries a sentence the CLI prints as is."""


class AnalysisError(Exception):
    """A trace cannot be analysed as asked; the message says why and what to do."""


class AllocatorSpecError(AnalysisError):
    """`--allocator` is malformed or names a symbol the program does not have."""


class RegisterProbeError(AnalysisError):
    """Register values the analysis needs could not be obtained."""

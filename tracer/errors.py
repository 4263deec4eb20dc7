"""The typed errors the record side raises; each carries a sentence meant for the user."""


class TracerError(Exception):
    """Base of every error the record side reports to the user."""


class AssembleError(TracerError):
    """nasm or ld rejected the program (message already in file:line form)."""


class ProgramError(TracerError):
    """The program file is missing, not an ELF, or not a static x86-64 executable."""


class UnsupportedSyscall(TracerError):
    """A real Linux syscall that vmtrace does not implement; the run stops there."""

    def __init__(self, nr: int, name: str, step: int, rip: int):
        super().__init__(
            f"the program called {name} (syscall {nr}) at step {step}, RIP {rip:#x}, "
            "which vmtrace does not emulate yet; the trace up to that point is kept"
        )
        self.nr, self.name, self.step, self.rip = nr, name, step, rip


class OutputError(TracerError):
    """The -o path cannot receive a trace: it is not a trace we may replace, or another
    recording is writing it."""


class SandboxError(TracerError):
    """The build sandbox is missing or does not work here; vmtrace never builds unconfined."""

"""The program's build (nasm + ld, or the C compiler), started on a thread so that it runs in
its sandbox on another core while the recorder's heavy modules (pyarrow, numpy, unicorn)
load. Light on purpose: importing this module loads none of them."""

from __future__ import annotations

import shlex
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from tracer.build import BuiltProgram, assemble
from tracer.compile_c import C_SUFFIXES, compile_c, compile_command

ASM_SUFFIXES = (".asm", ".s", ".nasm")


class BuildJob:
    """One program's build in progress; `result()` waits for it, `close()` ends it.

    A ready ELF (neither an assembly nor a C source) needs no build: `result()` is then None.
    Use it as a context manager: leaving it stops a build nobody waited for and removes the
    build directory (with the executable: copy it before).
    """

    def __init__(self, program: Path, include: Sequence[Path] = (), libc: str = "glibc",
                 cc_flags: Sequence[str] = (),
                 on_compile: Callable[[str], None] | None = None):
        self._tmp = tempfile.TemporaryDirectory(prefix="vmtrace-build-")
        workdir = Path(self._tmp.name)
        self._process = None
        self._built: BuiltProgram | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if program.is_dir():
            return
        if program.suffix.lower() in ASM_SUFFIXES:
            def build() -> BuiltProgram:
                return assemble(program, workdir, include, started=self._started)
        elif program.suffix in C_SUFFIXES:
            # Said before the thread starts: the command comes first on the terminal.
            if on_compile is not None:
                on_compile(shlex.join(compile_command(program, workdir / program.stem, libc,
                                                      cc_flags, include)))

            def build() -> BuiltProgram:
                return compile_c(program, workdir, libc, cc_flags, include,
                                 started=self._started)
        else:
            return
        self._thread = threading.Thread(target=self._run, args=(build,), daemon=True,
                                        name="vmtrace-build")
        self._thread.start()

    def _started(self, process) -> None:
        self._process = process

    def _run(self, build: Callable[[], BuiltProgram]) -> None:
        try:
            self._built = build()
        except BaseException as exc:  # re-raised by result(), in the caller's thread
            self._error = exc

    def result(self) -> BuiltProgram | None:
        """Waits for the build.

        Returns:
            The executable and the tools' warnings; None for a ready ELF.

        Raises:
            AssembleError, CompileError: the tools failed (file:line diagnostics).
            ProgramError: the source does not exist.
            SandboxError: the build sandbox is unavailable.
        """
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._built

    def close(self) -> None:
        """Stops the build if it still runs, then removes the build directory."""
        if self._thread is not None and self._thread.is_alive():
            process = self._process
            if process is not None:
                process.kill()
            self._thread.join()
        self._tmp.cleanup()

    def __enter__(self) -> BuildJob:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_build(program: Path, include: Sequence[Path] = (), libc: str = "glibc",
                cc_flags: Sequence[str] = (),
                on_compile: Callable[[str], None] | None = None) -> BuildJob:
    """Starts building `program` (see `BuildJob`); returns at once.

    Args:
        program: a NASM or C source, or anything else (a ready ELF: nothing is built).
        include: directories the source may include from (nasm's -i, gcc's -I).
        libc: for a C source: "glibc" or "musl".
        cc_flags: for a C source: further compiler flags.
        on_compile: told the exact compile command of a C source, before it runs.

    Returns:
        The running build.
    """
    return BuildJob(program, include, libc, cc_flags, on_compile)

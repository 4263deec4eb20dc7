"""Runs a build tool (nasm, ld; later gcc) inside a bubblewrap sandbox that holds only the
directories it is given (read-only ones, one writable one) and the toolchain's own files: no
other host file, no network, no /proc, no /dev, no capabilities. vmtrace never runs a build
tool outside it (docs/security.md)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from tracer.errors import SandboxError

# What a toolchain reads besides its input: programs, libraries (and gcc's helpers under
# lib/ and libexec/), system headers, and the dynamic loader's cache. Not the rest of /etc,
# not /home, /root, /tmp or /proc.
TOOLCHAIN_PATHS = ("/usr/bin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32",
                   "/usr/libexec", "/usr/include", "/etc/ld.so.cache")
# Links into /usr on merged-/usr systems (bound as they are on the host), real directories
# on older ones.
_ROOT_ENTRIES = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
BUILD_TIMEOUT_SECONDS = 120.0
INSTALL_HINT = "install it with `sudo apt-get install bubblewrap` (`make setup` does this for you)"


def run(argv: Sequence[str], read_only: Sequence[Path], writable: Path,
        timeout: float = BUILD_TIMEOUT_SECONDS,
        started: Callable[[subprocess.Popen], None] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """Runs `argv` confined, from the caller's working directory path.

    Args:
        argv: the tool (an absolute path; the directories along its symlinks become
            readable) and its arguments.
        read_only: directories or files the tool may read, mounted at their own paths so
            that the tool's messages name them as the user does.
        writable: the one directory the tool may write (its TMPDIR too).
        timeout: seconds before the tool is killed.
        started: told the running bwrap process (whoever may have to stop the build early
            kills it; the tool dies with it, `--die-with-parent`).

    Returns:
        The finished process, stdout and stderr as text.

    Raises:
        SandboxError: bubblewrap is missing or does not work here, a path cannot be
            mounted, or the tool did not finish within `timeout`.
    """
    bwrap = _bwrap()
    paths = [Path(os.path.abspath(p)) for p in read_only]
    if Path("/") in paths:
        raise SandboxError("the build would have to read all of / (a source or --include "
                           "directory is /); put the program in a directory of its own")
    paths += _link_dirs(Path(argv[0]))
    command = [bwrap, *_confinement(paths, Path(os.path.abspath(writable)), Path.cwd()),
               "--", *argv]
    name = Path(argv[0]).name
    # env given (bwrap's own environment, as inherited; --clearenv empties the tool's): without
    # it the child would exec with the C library's `environ`, which another thread's setenv
    # may reallocate meanwhile (pyarrow's import does, while `trace record` builds on a
    # thread): exec then failed with EFAULT, about one recording in a hundred.
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace", stdin=subprocess.DEVNULL,
                          env=dict(os.environ)) as process:
        if started is not None:
            started(process)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise SandboxError(f"`{name}` did not finish within {timeout:.0f} s and was stopped "
                               "(does the source include a FIFO, or loop in its macros?)"
                               ) from None
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    setup = [line for line in done.stderr.splitlines() if line.startswith("bwrap: ")]
    if done.returncode != 0 and setup:
        _check_bwrap_works(bwrap)
        raise SandboxError(f"the build sandbox could not run `{name}`: {setup[0][7:]}")
    return done


def _confinement(read_only: list[Path], writable: Path | None, cwd: Path) -> list[str]:
    """bwrap's arguments: a new empty root with the toolchain and the given paths in it."""
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LC_ALL", "C"]
    mounted: list[Path] = []
    binds: list[str] = []
    for entry in _ROOT_ENTRIES:
        if os.path.islink(entry):
            binds += ["--symlink", os.readlink(entry), entry]
        elif os.path.isdir(entry):
            binds += ["--ro-bind", entry, entry]
            mounted.append(Path(entry))
    wanted = {p for p in (*map(Path, TOOLCHAIN_PATHS), *read_only) if os.path.lexists(p)}
    # Parents before children; a path inside another one is already there.
    for path in sorted(wanted, key=lambda p: len(p.parts)):
        if not any(m in path.parents for m in wanted):
            binds += ["--ro-bind", str(path), str(path)]
            mounted.append(path)
    if writable is not None:
        args += ["--setenv", "TMPDIR", str(writable)]
        binds += ["--bind", str(writable), str(writable)]
        mounted.append(writable)
    # The tool runs from the caller's directory path (relative paths in argv and in its
    # messages stay as the user typed them), an empty directory unless it is mounted.
    if cwd != Path("/") and not any(cwd == m or m in cwd.parents for m in mounted):
        args += ["--dir", str(cwd)]
    return [*args, *binds, "--chdir", str(cwd), "--remount-ro", "/"]


def _link_dirs(tool: Path) -> list[Path]:
    """The directories a tool's path passes through, following its symlinks (e.g.
    /usr/bin/cc -> /etc/alternatives/cc -> /usr/bin/gcc), so that it can be started."""
    dirs, path = [], tool
    for _ in range(40):
        dirs.append(path.parent)
        if not path.is_symlink():
            break
        path = path.parent / os.readlink(path)
    return [Path(os.path.abspath(d)) for d in dirs]


@functools.cache
def _bwrap() -> str:
    """bwrap's path."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("vmtrace builds programs only inside a sandbox, and bubblewrap "
                           f"(`bwrap`) is not installed; {INSTALL_HINT}")
    return bwrap


def _check_bwrap_works(bwrap: str) -> None:
    """Once bwrap failed to set up a tool's sandbox: raises SandboxError saying so if it
    cannot even run `true` in the same confinement (no user namespaces, say), and returns
    if it can (then the tool's own paths were the trouble)."""
    true = shutil.which("true") or "/usr/bin/true"
    command = [bwrap, *_confinement(_link_dirs(Path(true)), None, Path("/")), "--", true]
    try:
        check = subprocess.run(command, capture_output=True, text=True, errors="replace",
                               timeout=30, stdin=subprocess.DEVNULL)
        failed = check.returncode != 0
        reason = (check.stderr.strip().splitlines() or [f"exit status {check.returncode}"])[0]
    except (OSError, subprocess.TimeoutExpired) as exc:
        failed, reason = True, str(exc)
    if failed:
        raise SandboxError(
            f"vmtrace builds programs only inside a sandbox, and bubblewrap does not work "
            f"here ({reason.removeprefix('bwrap: ')}); it needs user namespaces (allowed by "
            "default on Debian and Ubuntu, often not inside containers), or record a ready "
            "static ELF instead")

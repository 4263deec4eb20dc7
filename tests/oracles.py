"""Independent oracles for the end-to-end tests: the same ELF run natively on the host (plain,
under strace, under Valgrind lackey) and the recording of it read back with plain pyarrow.

Nothing here imports the record side except the guest's fixed environment, which the native
run must reproduce for the initial stack to match."""

from __future__ import annotations

import errno
import functools
import json
import re
import resource
import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from tracer.loader import DEFAULT_ENV

STACK_RLIMIT = 8 << 20


@dataclass(frozen=True)
class Syscall:
    nr: int
    name: str
    ret: int | None  # None: the call did not return (exit, or the process died in it)


@dataclass(frozen=True)
class NativeRun:
    stdout: bytes
    returncode: int      # negative: killed by that signal
    syscalls: tuple[Syscall, ...] | None = None  # from strace; None when not traced

    @property
    def signal(self) -> str | None:
        return signal.Signals(-self.returncode).name if self.returncode < 0 else None

    @property
    def exit_code(self) -> int | None:
        return self.returncode if self.returncode >= 0 else None


def _guest_env() -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in DEFAULT_ENV)


def _linux_limits() -> None:
    # The stack limit decides both where a stack overflow happens and where mmap_base lies
    # (Linux's mmap_base gap is RLIMIT_STACK clamped to at least 128 MiB); pin the default.
    resource.setrlimit(resource.RLIMIT_STACK, (STACK_RLIMIT, STACK_RLIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _command(exe: Path, args: tuple[str, ...]) -> list[str]:
    # argv[0] is "./name", run from the executable's directory: exactly what vmtrace puts on
    # the guest's stack (and the AT_EXECFN string), so the stack layouts can be compared.
    return [f"./{exe.name}", *args]


def run_native(exe: Path, args: tuple[str, ...] = (), stdin: bytes = b"") -> NativeRun:
    """Runs `exe` on the host with ASLR off (setarch -R), the guest's environment and an
    8 MiB stack limit."""
    done = subprocess.run(["setarch", "-R", *_command(exe, args)], input=stdin,
                          capture_output=True, cwd=exe.parent, env=_guest_env(),
                          preexec_fn=_linux_limits, timeout=60)
    return NativeRun(done.stdout, done.returncode)


# `[ nr] ` is there with `strace -n` (strace >= 5.17); older ones give the name only.
# `[???]`: a number outside every table (e.g. RAX = -1), named `syscall_0x...` after it.
_STRACE_LINE = re.compile(r"^(?:\[\s*(?P<nr>\d+|\?\?\?)\] )?(?P<name>\w+)\(.*\)\s+"
                          r"= (?P<ret>-?\w+|\?)(?: (?P<err>E[A-Z0-9]+) \(.*\))?")
_STRACE_KILLED = re.compile(r"^\+\+\+ killed by (SIG\w+)")
_STRACE_EXITED = re.compile(r"^\+\+\+ exited with (\d+) \+\+\+")


def parse_strace(text: str) -> tuple[list[Syscall], int | None]:
    """Parses `strace -n` output: the syscalls after the execve, and the returncode
    (negative signal number when killed)."""
    calls: list[Syscall] = []
    returncode = None
    started = False
    for line in text.splitlines():
        if (m := _STRACE_KILLED.match(line)):
            returncode = -signal.Signals[m[1]].value
            continue
        if (m := _STRACE_EXITED.match(line)):
            returncode = int(m[1])
            continue
        m = _STRACE_LINE.match(line)
        if m is None:
            continue
        if m["name"] == "execve":
            started = True
            continue
        if not started:
            continue
        if m["ret"] == "?":
            ret = None
        elif m["err"]:
            ret = -getattr(errno, m["err"])
        else:
            ret = int(m["ret"], 0)
        calls.append(Syscall(_number(m["nr"], m["name"]), m["name"], ret))
    return calls, returncode


def _number(nr: str | None, name: str) -> int:
    if nr is not None and nr != "???":
        return int(nr)
    if name.startswith("syscall_"):  # strace's name for a number Linux does not define
        # strace shows all of RAX; Linux (and the trace) use its low 32 bits, sign-extended
        from tracer.syscalls.abi import syscall_number

        return syscall_number(int(name.removeprefix("syscall_"), 0))
    from tracer.syscalls.numbers import SYSCALL_NUMBERS

    return SYSCALL_NUMBERS[name]  # x86-64 numbers: wrong only for int 0x80 calls


@functools.cache
def _strace_numbers_flag() -> tuple[str, ...]:
    done = subprocess.run(["strace", "-n", "-o", "/dev/null", "true"], capture_output=True)
    return ("-n",) if done.returncode == 0 else ()


def strace_native(exe: Path, workdir: Path, args: tuple[str, ...] = (),
                  stdin: bytes = b"") -> NativeRun:
    """Runs `exe` like `run_native`, under strace to learn every syscall's result."""
    log = workdir / f"{exe.name}.strace"
    # setarch outside strace: the personality (no ASLR) is inherited and only the program
    # itself is traced.
    done = subprocess.run(["setarch", "-R", "strace", *_strace_numbers_flag(), "-o", str(log),
                           "--", *_command(exe, args)], input=stdin, capture_output=True,
                          cwd=exe.parent, env=_guest_env(), preexec_fn=_linux_limits,
                          timeout=60)
    calls, returncode = parse_strace(log.read_text())
    return NativeRun(done.stdout, done.returncode if returncode is None else returncode,
                     tuple(calls))


def strace_works(workdir: Path, exe: Path) -> bool:
    """strace needs ptrace, which some containers forbid."""
    if shutil.which("strace") is None:
        return False
    done = subprocess.run(["strace", "-o", str(workdir / "probe.strace"), str(exe)],
                          capture_output=True, timeout=60)
    return done.returncode == 0 and "execve" in (workdir / "probe.strace").read_text()


# -- Valgrind lackey ----------------------------------------------------------------------
_LACKEY_DATA = re.compile(r"^ ([LSM]) ([0-9a-f]+),(\d+)$")
_LACKEY_INSN = re.compile(r"^I  ([0-9a-f]+),(\d+)$")


@dataclass(frozen=True)
class DataAccesses:
    """Data accesses as a multiset of (instruction address, size, is_write), and how many
    times each instruction address executed (lackey only)."""

    by_insn: Counter
    executed: Counter | None = None

    @property
    def reads(self) -> int:
        return sum(n for (_, _, w), n in self.by_insn.items() if not w)

    @property
    def writes(self) -> int:
        return sum(n for (_, _, w), n in self.by_insn.items() if w)

    @property
    def sizes(self) -> Counter:
        out: Counter = Counter()
        for (_, size, w), n in self.by_insn.items():
            out[(size, w)] += n
        return out


def parse_lackey(text: str) -> DataAccesses:
    """Reads lackey's --trace-mem log: a modify (M) is one read plus one write of its size;
    instruction fetches (I) only say which instruction the data accesses belong to.

    VEX translates a locked read-modify-write (lock add, lock xadd, xchg with memory) into
    a load followed by a compare-and-swap, which lackey logs as `L a,n` then `M a,n`: that
    pair is the instruction's one read and one write, so the load is not counted twice.
    """
    by_insn: Counter = Counter()
    executed: Counter = Counter()
    rip = None
    last_load = None
    # VEX, like QEMU, runs a rep string instruction once per iteration and then enters it
    # once more to find the count exhausted, with no access; the CPU has no such step. That
    # entry is the one at the same address as an entry that made accesses, making none.
    accessed = prev_accessed = False
    prev_rip = None

    def close_entry() -> None:
        if rip is not None and rip == prev_rip and prev_accessed and not accessed:
            executed[rip] -= 1

    for line in text.splitlines():
        if (m := _LACKEY_INSN.match(line)):
            close_entry()
            prev_rip, prev_accessed = rip, accessed
            rip, last_load, accessed = int(m[1], 16), None, False
            executed[rip] += 1
            continue
        m = _LACKEY_DATA.match(line)
        if m is None:
            continue
        accessed = True
        kind, addr, size = m[1], int(m[2], 16), int(m[3])
        if kind == "M" and last_load == (addr, size):
            by_insn[(rip, size, False)] -= 1
        if kind in "LM":
            by_insn[(rip, size, False)] += 1
        if kind in "SM":
            by_insn[(rip, size, True)] += 1
        last_load = (addr, size) if kind == "L" else None
    close_entry()
    return DataAccesses(+by_insn, executed)


def lackey(exe: Path, workdir: Path, args: tuple[str, ...] = (),
           stdin: bytes = b"") -> DataAccesses:
    """Counts the guest's loads and stores with Valgrind lackey.

    --vex-guest-max-insns=1 makes every instruction its own superblock. Lackey logs the
    accesses of a superblock when it completes, so otherwise the accesses of the
    instructions before a fault in the same superblock would be lost; this way exactly the
    faulting instruction's are missing, which is right: the fault is precise and that
    instruction did not happen. --smc-check=all: otherwise Valgrind keeps running its old
    translation of code the program rewrote (tests/programs/smc.asm).
    """
    log = workdir / f"{exe.name}.lackey"
    subprocess.run(["valgrind", "--tool=lackey", "--trace-mem=yes", "--vex-iropt-level=0",
                    "--vex-guest-max-insns=1", "--smc-check=all", f"--log-file={log}",
                    *_command(exe, args)],
                   input=stdin, capture_output=True, cwd=exe.parent, env=_guest_env(),
                   preexec_fn=_linux_limits, timeout=300)
    return parse_lackey(log.read_text())


def recorded_accesses(trace: Path) -> DataAccesses:
    """The guest's own data accesses (explicit and implicit, not kernel) in a trace, read
    through the format's reader (the file stores rip as differences)."""
    table = read_table(trace, "accesses")
    by_insn: Counter = Counter()
    for rip, size, is_write, source in zip(
            table["rip"].to_pylist(), table["size"].to_pylist(),
            table["is_write"].to_pylist(), table["source"].to_pylist()):
        if source != "kernel":
            by_insn[(rip, size, is_write)] += 1
    return DataAccesses(by_insn)


def read_table(trace: Path, name: str) -> pa.Table:
    """A whole table as every reader sees it (tracer/format/layout.py's view)."""
    from tracer.format.reader import TraceFiles

    return TraceFiles(trace).table(name)


def page_up(x: int) -> int:
    return (x + 0xFFF) & ~0xFFF


def elf_initial_break(exe: Path) -> int:
    """Page-aligned end of the highest PT_LOAD segment in memory (readelf, not our parser)."""
    out = subprocess.run(["readelf", "-lW", str(exe)], capture_output=True, text=True,
                         check=True).stdout
    end = 0
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            vaddr, memsz = int(parts[2], 16), int(parts[5], 16)
            end = max(end, vaddr + memsz)
    return page_up(end)


def symbol_address(exe: Path, name: str) -> int:
    """Address of a symbol, from `nm` (binutils), not from the trace."""
    out = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise KeyError(name)



# -- gdb single-stepping the real CPU -------------------------------------------------------
_GDB_STEPPER = '''
import gdb, json
gdb.execute("starti", to_string=True)
rows = []
while True:
    try:
        rows.append((int(gdb.parse_and_eval("$pc")) & 0xFFFFFFFFFFFFFFFF,
                     int(gdb.parse_and_eval("$rsp")) & 0xFFFFFFFFFFFFFFFF))
        gdb.execute("stepi", to_string=True)
    except gdb.error:  # the process has exited or died
        break
with open(OUT, "w") as f:
    json.dump(rows, f)
'''


def gdb_rsp_changes(exe: Path, workdir: Path, args: tuple[str, ...] = ()
                    ) -> list[tuple[int, int]]:
    """Single-steps `exe` natively under gdb and returns (address of the instruction,
    RSP change) for every instruction that moved RSP."""
    rows = gdb_single_steps(exe, workdir, args)
    return [(pc, new - old) for (pc, old), (_, new) in zip(rows, rows[1:]) if new != old]


def gdb_single_steps(exe: Path, workdir: Path, args: tuple[str, ...] = ()
                     ) -> list[tuple[int, int]]:
    """Single-steps `exe` natively under gdb: (RIP, RSP) before each `stepi`, until the
    process exits or dies (the instruction that ends it included)."""
    script = workdir / "rsp_stepper.py"
    out = script.with_suffix(".json")
    script.write_text(f"OUT = {str(out)!r}\n" + _GDB_STEPPER)
    # gdb adds LINES and COLUMNS to the inferior's environment: remove them so the initial
    # stack (and so RSP's alignment) is the one the program gets without gdb.
    subprocess.run(["gdb", "-nx", "-batch", "-ex", "set disable-randomization on",
                    "-ex", "set startup-with-shell off", "-ex", "unset environment LINES",
                    "-ex", "unset environment COLUMNS", "-x", str(script), "--args",
                    *_command(exe, args)], capture_output=True, cwd=exe.parent,
                   env=_guest_env(),
                   preexec_fn=_linux_limits, timeout=300, stdin=subprocess.DEVNULL)
    return [tuple(r) for r in json.loads(out.read_text())]

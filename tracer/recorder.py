"""Records one run of a program into a trace directory: builds it, loads it, runs it in
Unicorn with the native event hooks and our syscall layer, and writes every table."""

from __future__ import annotations

import gc
import hashlib
import json
import random
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unicorn import (
    UC_ARCH_X86, UC_HOOK_INSN, UC_HOOK_INTR, UC_HOOK_MEM_INVALID, UC_MODE_64, Uc, UcError,
)
from unicorn.x86_const import UC_X86_INS_SYSCALL, UC_X86_REG_EFLAGS, UC_X86_REG_RIP, UC_X86_REG_RSP

from tracer.address_space import (
    DEFAULT_MAX_MEMORY, STACK_GUARD_GAP, STACK_LIMIT, STACK_TOP, AddressSpace,
)
from tracer.build_job import BuildJob, start_build
from tracer.fetch_ahead import crossing_instruction
from tracer.compile_c import C_SUFFIXES
from tracer.cpu import start_like_linux
from tracer.elf import ElfProgram, read_elf
from tracer.errors import ProgramError, UnsupportedSyscall
from tracer.event_stream import EventStream, NativeStop, Progress
from tracer.ending import TRUNCATING_STOPS, Fault, StopReason
from tracer.format.schema import META_FILE, PROGRAM_FILE, SOURCES_FILE
from tracer.format.sources import write_sources
from tracer.format.writer import (
    RowBuffer, TableWriter, file_checksums, write_meta, write_table,
)
from tracer.hook_errors import HookErrors
from tracer.interrupts import (
    classify_interrupt, code_at, error_signal, memory_fault, native_fault_signal,
)
from tracer.limits import (
    DEFAULT_MAX_TRACE_MB, DEFAULT_MIN_FREE_MB, TraceBudget, mb_to_bytes,
)
from tracer.loader import DEFAULT_ENV, build_stack, load_elf
from tracer.output import check_output, claim_output
from tracer.registers import read_registers
from tracer.sources import collect_sources
from tracer.stop_request import StopRequest
from tracer.syscalls.abi import I386, X86_64, SyscallAbi
from tracer.syscalls.fileinfo import guest_exe_path
from tracer.syscalls.context import (
    ExitProcess, KilledBySignal, ProcessState, StdinFile, SyscallContext,
)
from tracer.syscalls.registry import dispatch, dispatch_i386, syscall_name

VIRTUAL_EPOCH_NS = 1_700_000_000 * 1_000_000_000
NS_PER_STEP = 1  # the virtual clock advances one nanosecond per instruction
# Rows of kernel_writes and output hold whole buffers: flush them once this many bytes wait,
# so that a loop of 32 MiB getrandom calls never piles its buffers up in memory.
FLUSH_DATA_BYTES = 1 << 20


@dataclass(frozen=True)
class RecordOptions:
    """Everything one recording depends on."""

    program: Path
    output: Path | None = None
    args: tuple[str, ...] = ()
    env: tuple[str, ...] | None = None
    stdin: bytes = b""
    max_steps: int | None = None
    max_trace_mb: float | None = DEFAULT_MAX_TRACE_MB  # every file of the trace; None: none
    min_free_mb: float | None = DEFAULT_MIN_FREE_MB    # stop when the disk has less free
    max_memory: int = DEFAULT_MAX_MEMORY               # bytes the guest may have mapped
    stop: StopRequest | None = None                    # set it to stop the run (Ctrl-C)
    allow_read: tuple[Path, ...] = ()
    include: tuple[Path, ...] = ()
    seed: int = 0
    batch_events: int = 1 << 18
    echo: Callable[[int, bytes], None] | None = None
    progress: Callable[[Progress], None] | None = None
    # C sources: which libc, further compiler flags, and who is told the compile command.
    libc: str = "glibc"
    cc_flags: tuple[str, ...] = ()
    on_compile: Callable[[str], None] | None = None
    # `trace record --fast` (tracer/fast_record.py): one keyframe about every so many steps;
    # 2^22 is several per second of emulation, each slice replayed in well under a second.
    keyframe_every: int = 1 << 22
    # The per-instruction code hook instead of block mode (docs/architecture.md): slower,
    # the same tables except eflags at a fault; kept as the oracle block mode is tested
    # against (tests/test_recorder_equivalence.py).
    per_instruction: bool = False


@dataclass
class RecordResult:
    trace: Path
    stop_reason: StopReason
    exit_code: int | None
    signal: str | None
    fault: Fault | None
    instructions: int
    accesses: int
    truncated: bool
    error: str | None
    warnings: list[str] = field(default_factory=list)
    rip: int | None = None             # where the run stopped (the next instruction)
    interrupted_by: str | None = None  # the StopRequest's reason, e.g. "SIGINT"
    memory_refusals: int = 0           # mmap/brk/mremap calls refused by max_memory
    build_command: str | None = None   # the compiler command, for a C source


def _mib(value: float | None) -> float | int | None:
    """A size in MiB for meta.json: a whole number stays an int (1024, not 1024.0)."""
    return int(value) if value is not None and float(value).is_integer() else value


def _source_kind(source: Path | None) -> str:
    if source is None:
        return "elf"
    return "c" if source.suffix in C_SUFFIXES else "asm"


def default_output(program: Path) -> Path:
    return Path("traces") / program.stem


def record(options: RecordOptions, build: BuildJob | None = None,
           recording: type[_Recording] | None = None) -> RecordResult:
    """Records `options.program` into a trace directory.

    The run is written into `NAME.recording-PID/` beside the output directory and renamed
    into place when it ends (tracer/output.py); a recording killed before that leaves its
    partial trace there.

    Args:
        options: what to record, and how.
        build: the program's build, started already (the CLI starts it before this module
            loads, tracer/build_job.py); None: it starts here. Closed on return.
        recording: the kind of run (tracer/fast_record.py's for `--fast`); a full one by
            default.

    Returns:
        How the run ended; the trace is complete on return.

    Raises:
        TracerError: the program cannot be built or loaded, or the output directory cannot
            receive a trace (nothing is recorded, and the output directory is unchanged).
        BaseException: whatever a hook raised (a syscall handler's bug, say), once the
            trace up to it is complete, ending in `error` (tracer/hook_errors.py).
    """
    program_path = options.program
    if build is None:
        build = start_build(program_path, options.include, options.libc, options.cc_flags,
                            options.on_compile)
    with build:
        if program_path.is_dir():
            if (program_path / META_FILE).is_file():
                raise ProgramError(f"{program_path} is a trace, not a program: `trace info "
                                   f"{program_path}` or `trace report {program_path}` reads it")
            raise ProgramError(f"{program_path} is a directory: give a .asm, .c or static ELF "
                               "file to record")
        out = options.output or default_output(program_path)
        check_output(out)
        built = build.result()
        source, command = None, None
        warnings: list[str] = []
        if built is not None:
            source, elf_path, warnings = program_path, built.elf, list(built.warnings)
            command = built.command
        else:
            elf_path = program_path
        program = read_elf(elf_path)
        with claim_output(out) as output:
            shutil.copyfile(elf_path, output.work / PROGRAM_FILE)
            _keep_sources(output.work, program_path, _source_kind(source), options.include,
                          program)
            run = (recording or _Recording)(options, program, source, warnings, output.work)
            result = run.run()
            result.trace = output.commit()
        result.build_command = command
        failed = run.hook_errors.first
        if failed is not None:
            failed.exception.add_note(f"{failed.sentence()}; the trace up to it is {result.trace}")
            raise failed.exception
        return result


def _keep_sources(work: Path, program_path: Path, kind: str, include: tuple[Path, ...],
                  program: ElfProgram) -> None:
    """Writes sources.arrows when any source file can be kept (docs/trace-format.md)."""
    files = collect_sources(program_path, kind, include,
                            list(dict.fromkeys(e.file for e in program.lines)))
    if files:
        write_sources(work / SOURCES_FILE, files)


class _Recording:
    """One run in progress. Owns the engine, the address space and the writers."""

    # Set by the fetch-fault hook when Unicorn faulted on an instruction ahead of RIP
    # (tracer/fetch_ahead.py): the driver runs up to that instruction and resumes there.
    _run_until: int | None = None

    def __init__(self, options: RecordOptions, program: ElfProgram, source: Path | None,
                 warnings: list[str], out: Path):
        self.options = options
        self.program = program
        self.source = source
        self.warnings = warnings
        self.out = out
        self.rng = random.Random(options.seed)
        self.fault: Fault | None = None
        self.exit_code: int | None = None
        self.error: str | None = None
        self.stop_reason: StopReason | None = None
        self.hook_errors = HookErrors()

    # -- set-up -------------------------------------------------------------------------
    def _meta(self, end: dict | None) -> dict:
        o = self.options
        program = {
            "path": str(self.source or self.program.path),
            "name": (self.source or self.program.path).name,
            "elf_sha256": self.program.sha256,
            "kind": _source_kind(self.source),
            "entry": self.program.entry,
        }
        if self.source:
            program["source_sha256"] = hashlib.sha256(self.source.read_bytes()).hexdigest()
        return {
            "complete": end is not None,
            "program": program,
            "argv": self.argv,
            "env": self.env,
            "warnings": self.warnings,
            "limits": {"max_steps": o.max_steps, "max_trace_mb": _mib(o.max_trace_mb),
                       "min_free_mb": _mib(o.min_free_mb),
                       "max_memory_mb": _mib(o.max_memory / (1 << 20))},
            "seed": o.seed,
            "stdin_bytes": len(o.stdin),
            "allow_read": [str(p) for p in o.allow_read],
            "initial": self.initial,
            "end": end,
        }

    def _start_process(self, tables: tuple[str, ...] = ()):
        """Loads the program as Linux would, writes meta.json and the start-up tables, and
        opens the size budget and the streamed tables (`tables`: a kind of run's own).

        Returns:
            The initial break, the loaded stack, and the budget's verdict at the start.
        """
        o = self.options
        self.argv = [f"./{self.program.path.name}", *o.args]
        self.env = list(DEFAULT_ENV if o.env is None else o.env)
        uc = self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        start_like_linux(uc)
        space = self.space = AddressSpace(uc)
        space.max_memory = o.max_memory
        brk = load_elf(space, uc, self.program)
        space.set_initial_brk(brk)
        random_bytes = self.rng.randbytes(16)
        loaded = build_stack(space, uc, self.program, self.argv, self.env, random_bytes)
        uc.reg_write(UC_X86_REG_RSP, loaded.rsp)
        uc.reg_write(UC_X86_REG_RIP, loaded.entry)
        uc.reg_write(UC_X86_REG_EFLAGS, 0x202)
        self.initial = {
            "rip": loaded.entry, "rsp": loaded.rsp, "brk": brk, "stack_top": STACK_TOP,
            "stack_limit": STACK_LIMIT, "registers": read_registers(uc),
            "auxv": [list(kv) for kv in loaded.auxv],
        }
        write_meta(self.out, self._meta(None))
        self._write_static_tables(loaded.rsp)

        # Every file counts against the size limit: those written already as a fixed part,
        # the syscall tables (this thread) and the event tables (the drain thread) as they grow.
        self.budget = TraceBudget(self.out, mb_to_bytes(o.max_trace_mb),
                                  mb_to_bytes(o.min_free_mb))
        # (The first report also checks the free disk space.)
        at_start = self.budget.report("fixed", sum(p.stat().st_size for p in self.out.iterdir()))
        self._table_writers = {name: TableWriter(self.out, name) for name in (
            "regions", "syscalls", "kernel_writes", "output", *tables)}
        return brk, loaded, at_start

    def run(self) -> RecordResult:
        o = self.options
        brk, loaded, at_start = self._start_process()
        uc, space = self.uc, self.space
        self._pending_data = 0  # bytes of kernel_writes/output rows not yet on disk
        self._io_cut = False    # a syscall moved fewer bytes to stay within the size limit
        self.regions = RowBuffer(self._table_writers["regions"])
        self._flush_region_events(0)
        # The initial map goes to disk now: a recording killed later still has it.
        self.regions.flush()
        self.syscalls = RowBuffer(self._table_writers["syscalls"], every=64)
        self.kernel_writes = RowBuffer(self._table_writers["kernel_writes"], every=64)
        self.output = RowBuffer(self._table_writers["output"], every=16)
        self.process = ProcessState(stdin=StdinFile(o.stdin), allow_read=tuple(
            p.resolve() for p in o.allow_read))
        self.process.files.update({0: self.process.stdin, 1: "stdout", 2: "stderr"})
        self.process.exe_path = guest_exe_path(self.program.path.name)

        accesses = TableWriter(self.out, "accesses")
        rsp = TableWriter(self.out, "rsp")
        max_bytes = self.budget.max_bytes
        batch_events, max_pending = o.batch_events, 4
        if max_bytes is not None and max_bytes < (256 << 20):
            # The size is checked as each batch reaches the disk, while the emulator runs
            # up to `max_pending` batches ahead: keep batches small next to a small limit
            # (an access row is under 64 bytes before compression) so the overshoot stays
            # small. Next to a large one, a few batches (~1 MB each) do not matter.
            batch_events = max(4096, min(batch_events, max_bytes // 256))
            max_pending = 1
        self.events = EventStream(uc, accesses, rsp, loaded.rsp, o.max_steps, self.budget,
                                  batch_events=batch_events, max_pending=max_pending,
                                  progress=o.progress,
                                  stack=(space.stack_floor, space.stack_start),
                                  blocks=not o.per_instruction)
        if at_start is not None:
            self.events.request_stop(at_start)  # the run stops before its first step
        uc.hook_add(UC_HOOK_INSN, self._on_syscall, aux1=UC_X86_INS_SYSCALL)
        uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid_memory)
        uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        # Left before `finish`/`close`: the request never reaches a freed native recorder.
        listening = (o.stop.subscribed(lambda: self.events.request_stop(StopReason.INTERRUPTED))
                     if o.stop is not None else nullcontext())
        # Everything made so far lives for the whole run: keep it out of the collector's
        # passes, which the drain thread's per-chunk objects would otherwise trigger; and
        # until the trace is closed (unfrozen while the last chunks drain, the whole heap,
        # every module imported, went through full collections: ~0.1 s).
        gc.freeze()
        try:
            return self._run(uc, loaded.entry, listening, accesses, rsp)
        finally:
            gc.unfreeze()

    def _run(self, uc: Uc, entry: int, listening, accesses: TableWriter,
             rsp: TableWriter) -> RecordResult:
        """Runs the program to its end and closes the trace."""
        with listening:
            try:
                self.events.run(entry, lambda: (self.stop_reason is None
                                                and self.hook_errors.first is None),
                                self._take_run_until)
            except UcError as exc:
                if (self.fault is None and self.stop_reason is None
                        and self.hook_errors.first is None):
                    self._fault_from_error(exc)
            finally:
                self.events.finish(uc.reg_read(UC_X86_REG_RSP))
                self._flush_stack_growth()
        failed = self.hook_errors.first
        if failed is not None:  # the trace ends here; record() raises the exception
            self.stop_reason = StopReason.ERROR
            self.error = failed.sentence()
        limit = self.events.stopped_by_limit
        if self.stop_reason is None and limit is not None:
            self.stop_reason = limit
        native = self.events.native_stop
        if self.stop_reason is None and native is not None:
            self._native_fault(native)
        if self.stop_reason is None:
            # emu_start returned with no exit, fault or limit: nothing is left to run.
            self.stop_reason = StopReason.STOPPED
        if self.events.error is not None:
            raise self.events.error
        return self._close(accesses, rsp)

    def _write_static_tables(self, rsp: int) -> None:
        p = self.program
        write_table(self.out, "symbols", {
            "name": [s.name for s in p.symbols], "addr": [s.addr for s in p.symbols],
            "size": [s.size for s in p.symbols], "type": [s.type for s in p.symbols],
            "section": [s.section for s in p.symbols]})
        write_table(self.out, "lines", {
            "addr": [e.addr for e in p.lines], "file": [e.file for e in p.lines],
            "line": [e.line for e in p.lines]})
        image = {"start": [], "perms": [], "kind": [], "data": []}
        for r in self.space.regions:
            if r.kind == "vdso":
                continue  # zero-filled stand-ins for [vvar]/[vdso]
            start = r.start
            if r.kind == "stack":
                start = (rsp & ~0xFFF)
            image["start"].append(start)
            image["perms"].append(r.perms)
            image["kind"].append(r.kind)
            image["data"].append(bytes(self.uc.mem_read(start, r.end - start)))
        write_table(self.out, "memory_image", image)
        write_table(self.out, "inputs", {"name": ["stdin"], "data": [self.options.stdin]})

    # -- events -------------------------------------------------------------------------
    def _flush_stack_growth(self) -> None:
        """Writes the stack growths the native hooks saw since the last call, each at the
        step of the access that made it (they all precede the events written after)."""
        for growth in self.events.take_growth():
            ev = self.space.grow_stack(growth.start)
            self.regions.add(step=growth.step, action=ev.action, start=ev.start, end=ev.end,
                             perms=ev.perms, kind=ev.kind, name=ev.name)

    def _flush_region_events(self, step: int) -> None:
        events = getattr(self, "events", None)  # none yet for the initial map
        for ev in self.space.events:
            if events is not None:
                # Code there may have changed: the step counter decodes it again.
                events.invalidate(ev.start, ev.end)
            self.regions.add(step=step, action=ev.action, start=ev.start, end=ev.end,
                             perms=ev.perms, kind=ev.kind, name=ev.name)
        self.space.events.clear()

    def _on_output(self, fd: int, data: bytes) -> None:
        self._add_data_row(self.output, step=self.events.step, fd=fd, data=data)
        if self.options.echo is not None:
            self.options.echo(fd, data)

    def _on_kernel_access(self, addr: int, data: bytes, is_write: bool) -> None:
        self.events.kernel_access(addr, data, is_write)
        if is_write:
            self._add_data_row(self.kernel_writes, step=self.events.step, addr=addr, data=data)

    def _on_mapped_file(self, addr: int, data: bytes) -> None:
        self._add_data_row(self.kernel_writes, step=self.events.step, addr=addr, data=data)

    def _add_data_row(self, buffer: RowBuffer, **row) -> None:
        buffer.add(**row)
        self._pending_data += len(row["data"])
        if self._pending_data >= FLUSH_DATA_BYTES:
            self.kernel_writes.flush()
            self.output.flush()
            self._pending_data = 0

    # -- limits -------------------------------------------------------------------------
    def _check_budget(self) -> None:
        """Reports the syscall tables' size; asks for a stop when a limit is reached."""
        written = sum(w.bytes_written() for w in self._table_writers.values())
        cause = self.budget.report("tables", written + self._pending_data)
        if cause is None and self._io_cut:
            cause = StopReason.MAX_TRACE_SIZE
        if cause is not None:
            self.events.request_stop(cause)

    def _limit_io(self, count: int) -> int:
        """How many of `count` bytes a syscall may move into the trace (read, write,
        getrandom): all, unless that would pass the size limit. Then it moves what fits and
        the run stops right after it, so the program never sees the short count."""
        self._check_budget()
        room = self.budget.room()
        if room is None or count <= room:
            return count
        self._io_cut = True
        return room

    # -- hooks (Python runs here once per syscall or fault, never per access) -----------
    def _on_syscall(self, uc: Uc, _user) -> None:
        self.hook_errors.run(uc, "emulating a syscall", lambda: self._syscall(uc))

    def _syscall(self, uc: Uc, abi: SyscallAbi = X86_64, rip: int | None = None) -> None:
        if rip is None:
            # In Unicorn's syscall hook RIP still points at the 2-byte `syscall` instruction.
            rip = uc.reg_read(UC_X86_REG_RIP)
        nr, args = abi.read_call(uc)
        result = self._run_syscall(uc, abi.name, nr, args, rip)
        if result is not None:
            abi.write_result(uc, result, rip)

    def _run_syscall(self, uc: Uc, abi: str, nr: int, args: tuple[int, ...],
                     rip: int) -> int | None:
        """Runs one syscall and records it; returns RAX, or None when the run stops."""
        self.events.check_rsp(uc.reg_read(UC_X86_REG_RSP))
        step = self.events.step
        ctx = SyscallContext(
            uc=uc, space=self.space, process=self.process, sink=self, step=step,
            output=self._on_output, random=self.rng.randbytes,
            now_ns=lambda: VIRTUAL_EPOCH_NS + step * NS_PER_STEP + self.process.clock_offset_ns,
            mapped_file_data=self._on_mapped_file, limit_io=self._limit_io, rip=rip)
        name = syscall_name(nr, abi)
        row = dict(step=step, rip=rip, nr=nr, name=name, args=list(args), abi=abi)
        try:
            run = dispatch if abi == "x86_64" else dispatch_i386
            result = run(ctx, nr, args, rip)
        except ExitProcess as done:
            self.exit_code = done.code
            self.stop_reason = StopReason.EXIT
            self.syscalls.add(**row, ret=None, detail=None)
            uc.emu_stop()
            return None
        except KilledBySignal as killed:
            self.fault = Fault(killed.signal, killed.cause, step, rip, None, None)
            self.stop_reason = StopReason.FAULT
            # The syscall itself succeeded; the signal kills on the way back to user space.
            self.syscalls.add(**row, ret=0, detail="signal")
            uc.emu_stop()
            return None
        except UnsupportedSyscall as exc:
            self.error = str(exc)
            self.stop_reason = StopReason.UNSUPPORTED_SYSCALL
            self.syscalls.add(**row, ret=None, detail="unsupported")
            uc.emu_stop()
            return None
        self.syscalls.add(**row, ret=result, detail=self._region_detail())
        self._flush_stack_growth()
        self._flush_region_events(step)
        self._check_budget()
        return result

    kernel_access = _on_kernel_access  # the SyscallContext sink protocol

    def _region_detail(self) -> str | None:
        if not self.space.events:
            return None
        return json.dumps([{"action": e.action, "start": e.start, "end": e.end,
                            "perms": e.perms, "kind": e.kind} for e in self.space.events])

    def _on_invalid_memory(self, uc: Uc, access: int, address: int, size: int, value: int,
                           _user) -> bool:
        fault = memory_fault(uc, access, address)
        if fault.fetch:
            self._run_until = crossing_instruction(uc, fault.address)
            if self._run_until is not None:
                return False  # the instructions before it run first (`_take_run_until`)
        kind, address = fault.access, fault.address
        stack_floor = STACK_TOP - STACK_LIMIT
        signal = "SIGSEGV"
        region = self.space.region_at(address)
        if fault.non_canonical is not None:
            signal, cause = fault.non_canonical.signal, fault.non_canonical.cause
        elif fault.unmapped and stack_floor - STACK_GUARD_GAP <= address < stack_floor:
            cause = "stack overflow: the stack grew past its 8 MiB limit"
        elif fault.unmapped:
            cause = f"{kind} of unmapped address {address:#x}"
        elif kind == "write":
            what = region.kind if region else "read-only"
            cause = f"write to read-only memory ({what} {region.perms if region else ''})"
        elif kind == "execute":
            cause = f"execute of non-executable memory ({region.kind if region else ''})"
        else:
            cause = f"{kind} of memory without read permission"
        step = self.events.instructions if fault.fetch else self.events.step
        if not fault.fetch:
            self.events.discard_current()
        self.fault = Fault(signal, cause.strip(), step, fault.rip, address, kind)
        self.stop_reason = StopReason.FAULT
        return False

    def _on_interrupt(self, uc: Uc, intno: int, _user) -> None:
        self.hook_errors.run(uc, f"handling interrupt {intno}",
                             lambda: self._interrupt(uc, intno))

    def _interrupt(self, uc: Uc, intno: int) -> None:
        what = classify_interrupt(uc, intno)
        if what.i386_syscall:
            self._syscall(uc, I386, what.rip)
            return
        self.fault = Fault(what.signal, what.cause, self.events.step, what.rip, None, None)
        self.stop_reason = StopReason.FAULT
        uc.emu_stop()

    def _take_run_until(self) -> int | None:
        """Where to run up to before resuming, after a fetch fault ahead of RIP (once)."""
        until, self._run_until = self._run_until, None
        return until if self.hook_errors.first is None else None

    def _native_fault(self, stop: NativeStop) -> None:
        """The fault the native hooks stopped before: the instruction did not run (and is
        not a step), as the CPU faults before it does anything."""
        from capstone import CS_ARCH_X86, CS_MODE_64, Cs

        from tracer.classify import aligned_operand

        code = code_at(self.uc, stop.rip)
        cs = Cs(CS_ARCH_X86, CS_MODE_64)
        cs.detail = True
        insn = next(cs.disasm(code, stop.rip, 1), None)
        if insn is None:
            text = f"the bytes {code[:4].hex(' ')} … at RIP are no valid instruction"
        else:
            text = f"{insn.mnemonic} {insn.op_str}".strip()
        operand = aligned_operand(insn) if insn is not None else None
        said = native_fault_signal(stop.fault, text, stop.address,
                                   operand.align if operand else None)
        access = None if stop.address is None else ("write" if stop.is_write else "read")
        self.fault = Fault(said.signal, said.cause, self.events.instructions, stop.rip,
                           stop.address, access)
        self.stop_reason = StopReason.FAULT

    def _fault_from_error(self, exc: UcError) -> None:
        said = error_signal(str(exc))
        self.fault = Fault(said.signal, said.cause, self.events.step,
                           self.uc.reg_read(UC_X86_REG_RIP), None, None)
        self.stop_reason = StopReason.FAULT

    # -- closing ------------------------------------------------------------------------
    def _close(self, accesses: TableWriter, rsp: TableWriter) -> RecordResult:
        rips, counts = self.events.exec_counts()
        write_table(self.out, "exec_counts", {"rip": rips, "count": counts})
        n_accesses, n_rsp = self.events.totals
        access_counts, lowest_rsp = self.events.access_counts(), self.events.lowest_rsp
        instructions = self.events.instructions
        self.events.close()
        for buffer in (self.regions, self.syscalls, self.kernel_writes, self.output):
            buffer.close()
        accesses.close()
        rsp.close()
        truncated = self.stop_reason in TRUNCATING_STOPS
        signal = self.fault.signal if self.fault else None
        end = {
            "stop_reason": self.stop_reason,
            "exit_code": self.exit_code,
            "signal": signal,
            "fault": asdict(self.fault) if self.fault else None,
            "instructions": instructions,
            "accesses": n_accesses,
            "rsp_changes": n_rsp,
            # What `trace info` shows, so that it never scans the event tables.
            "access_counts": access_counts,
            "lowest_rsp": lowest_rsp,
            "truncated": truncated,
            "error": self.error,
            "brk": {"start": self.space.brk_start, "end": self.space.brk},
            "registers": read_registers(self.uc),
        }
        meta = self._meta(end)
        meta["files"] = file_checksums(self.out)
        write_meta(self.out, meta)
        stop = self.options.stop
        return RecordResult(trace=self.out, stop_reason=self.stop_reason,
                            exit_code=self.exit_code, signal=signal, fault=self.fault,
                            instructions=instructions, accesses=n_accesses,
                            truncated=truncated, error=self.error, warnings=self.warnings,
                            rip=end["registers"].get("rip"),
                            interrupted_by=(stop.reason if stop is not None and
                                            self.stop_reason == StopReason.INTERRUPTED
                                            else None),
                            memory_refusals=self.space.memory_refusals)

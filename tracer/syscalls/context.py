"""What a syscall handler may touch: guest memory (each touch recorded as a kernel-side
access), the address space, the process's files and clock. Handlers get nothing else."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from unicorn import Uc

from tracer.address_space import PROT_READ, PROT_WRITE, AddressSpace


class GuestFault(Exception):
    """A syscall argument points at memory the process may not use that way (-EFAULT)."""


class KernelAccessSink(Protocol):
    def kernel_access(self, addr: int, data: bytes, is_write: bool) -> None: ...


@dataclass
class OpenFile:
    """A host file the user allowed the guest to read, with the guest's file position."""

    host_path: Path
    data: bytes
    position: int = 0


@dataclass
class StdinFile:
    data: bytes
    position: int = 0


@dataclass
class SocketFile:
    """A socket the guest created; it can never be connected (see sys_connect)."""

    domain: int
    type: int


@dataclass
class ProcessState:
    """Process-level state the kernel keeps: files, exit status, virtual time."""

    stdin: StdinFile
    allow_read: tuple[Path, ...]
    pid: int = 4242
    files: dict[int, OpenFile | StdinFile | SocketFile | str] = field(default_factory=dict)
    exit_code: int | None = None
    clock_offset_ns: int = 0
    fs_base: int = 0
    gs_base: int = 0
    # Kept for libc's start-up calls (tracer/syscalls/threads.py, signals.py, limits.py).
    clear_child_tid: int = 0
    robust_list: int = 0
    rseq: tuple[int, int, int] | None = None  # (address, length, signature)
    signal_actions: dict[int, bytes] = field(default_factory=dict)
    signal_mask: int = 0
    signals_pending: int = 0
    limits: dict[int, tuple[int, int]] = field(default_factory=dict)
    exe_path: str = ""  # what readlink("/proc/self/exe") gives


class ExitProcess(Exception):
    """Raised by exit/exit_group to end the run."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class KilledBySignal(Exception):
    """Raised by a syscall that delivers a fatal signal to the process itself (kill,
    tgkill, tkill with the default action): the run ends as by a fault."""

    def __init__(self, signal: str, cause: str):
        super().__init__(cause)
        self.signal, self.cause = signal, cause


@dataclass
class SyscallContext:
    uc: Uc
    space: AddressSpace
    process: ProcessState
    sink: KernelAccessSink
    step: int
    output: Callable[[int, bytes], None]
    random: Callable[[int], bytes]
    now_ns: Callable[[], int]
    mapped_file_data: Callable[[int, bytes], None]
    # How many of N bytes a read/write/getrandom may move: fewer only when the trace would
    # pass its size limit (the run then stops right after the syscall).
    limit_io: Callable[[int], int] = lambda count: count
    rip: int = 0  # of the `syscall` instruction, for messages

    def read_guest(self, addr: int, size: int) -> bytes:
        """Reads guest memory on the kernel's behalf (recorded as a kernel read)."""
        if size == 0:
            return b""
        if not self.space.is_mapped(addr, size, PROT_READ):
            raise GuestFault()
        data = bytes(self.uc.mem_read(addr, size))
        self.sink.kernel_access(addr, data, False)
        return data

    def write_guest(self, addr: int, data: bytes) -> None:
        """Writes guest memory on the kernel's behalf (recorded as a kernel write)."""
        if not data:
            return
        if not self.space.is_mapped(addr, len(data), PROT_WRITE):
            raise GuestFault()
        self.uc.mem_write(addr, data)
        self.sink.kernel_access(addr, data, True)

    def read_c_string(self, addr: int, limit: int = 4096) -> bytes:
        out = bytearray()
        while len(out) < limit:
            if not self.space.is_mapped(addr + len(out), 1, PROT_READ):
                raise GuestFault()
            byte = bytes(self.uc.mem_read(addr + len(out), 1))
            if byte == b"\0":
                break
            out += byte
        self.sink.kernel_access(addr, bytes(out) + b"\0", False)
        return bytes(out)

    def write_u64(self, addr: int, *values: int) -> None:
        self.write_guest(addr, struct.pack(f"<{len(values)}q", *values))

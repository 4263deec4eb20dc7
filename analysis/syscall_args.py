"""Each syscall's own arguments, named and decoded for people: `mmap(addr=0x0,
length=4096, prot=PROT_READ|PROT_WRITE, flags=MAP_PRIVATE|MAP_ANONYMOUS, fd=-1,
offset=0)` rather than the six argument registers, whatever they held.

A table of signatures (the Linux x86-64 prototypes of the syscalls vmtrace emulates) and
decoders for the flag words; used by the report's and `trace info`'s syscall tables."""

from __future__ import annotations

import errno
from collections.abc import Callable

_PROT = [(0x1, "PROT_READ"), (0x2, "PROT_WRITE"), (0x4, "PROT_EXEC")]
_MAP = [(0x01, "MAP_SHARED"), (0x02, "MAP_PRIVATE"), (0x10, "MAP_FIXED"),
        (0x20, "MAP_ANONYMOUS"), (0x100, "MAP_GROWSDOWN"), (0x800, "MAP_DENYWRITE"),
        (0x1000, "MAP_EXECUTABLE"), (0x2000, "MAP_LOCKED"), (0x4000, "MAP_NORESERVE"),
        (0x8000, "MAP_POPULATE"), (0x10000, "MAP_NONBLOCK"), (0x20000, "MAP_STACK"),
        (0x40000, "MAP_HUGETLB"), (0x100000, "MAP_FIXED_NOREPLACE")]
_MREMAP = [(1, "MREMAP_MAYMOVE"), (2, "MREMAP_FIXED"), (4, "MREMAP_DONTUNMAP")]
_OPEN = [(0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"),
         (0o2000, "O_APPEND"), (0o4000, "O_NONBLOCK"), (0o200000, "O_DIRECTORY"),
         (0o400000, "O_NOFOLLOW"), (0o2000000, "O_CLOEXEC")]
_ACCESS_MODES = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"}
_WHENCE = {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END"}
_FDS = {0: "stdin", 1: "stdout", 2: "stderr"}
_ARCH_PRCTL = {0x1001: "ARCH_SET_GS", 0x1002: "ARCH_SET_FS", 0x1003: "ARCH_GET_FS",
               0x1004: "ARCH_GET_GS"}
_MADVISE = {0: "MADV_NORMAL", 1: "MADV_RANDOM", 2: "MADV_SEQUENTIAL", 3: "MADV_WILLNEED",
            4: "MADV_DONTNEED", 8: "MADV_FREE"}
_AT_FDCWD = -100


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _bits(table: list[tuple[int, str]], empty: str) -> Callable[[int], str]:
    def decode(value: int) -> str:
        names = [name for bit, name in table if value & bit]
        rest = value & ~sum(bit for bit, _ in table)
        if rest:
            names.append(f"{rest:#x}")
        return "|".join(names) or empty
    return decode


def _open_flags(value: int) -> str:
    rest = _bits(_OPEN, "")(value & ~3)
    return "|".join(x for x in (_ACCESS_MODES.get(value & 3, f"{value & 3:#x}"), rest) if x)


def _fd(value: int) -> str:
    fd = _signed(value) if value >= 1 << 31 else value
    if (fd & 0xFFFFFFFF) == (_AT_FDCWD & 0xFFFFFFFF) or fd == _AT_FDCWD:
        return "AT_FDCWD"
    fd = fd - (1 << 32) if 1 << 31 <= fd < 1 << 32 else fd
    return f"{fd} ({_FDS[fd]})" if fd in _FDS else str(fd)


def _int(value: int) -> str:
    return str(_signed(value))


def _size(value: int) -> str:
    return f"{value:,}" if value < 1 << 40 else f"{value:#x}"


def _hex(value: int) -> str:
    return f"{value:#x}"


def _octal(value: int) -> str:
    return f"{value:#o}"


def _named(table: dict[int, str]) -> Callable[[int], str]:
    return lambda value: table.get(value, str(_signed(value)))


# What each kind of argument is shown as.
KINDS: dict[str, Callable[[int], str]] = {
    "addr": _hex, "size": _size, "int": _int, "fd": _fd, "prot": _bits(_PROT, "PROT_NONE"),
    "mmap_flags": _bits(_MAP, "0"), "mremap_flags": _bits(_MREMAP, "0"),
    "open_flags": _open_flags, "mode": _octal, "whence": _named(_WHENCE),
    "arch_prctl": _named(_ARCH_PRCTL), "madvise": _named(_MADVISE), "flags": _hex,
}

# name: ((argument name, kind), ...), in register order (rdi, rsi, rdx, r10, r8, r9).
SIGNATURES: dict[str, tuple[tuple[str, str], ...]] = {
    "read": (("fd", "fd"), ("buf", "addr"), ("count", "size")),
    "write": (("fd", "fd"), ("buf", "addr"), ("count", "size")),
    "pread64": (("fd", "fd"), ("buf", "addr"), ("count", "size"), ("offset", "int")),
    "pwrite64": (("fd", "fd"), ("buf", "addr"), ("count", "size"), ("offset", "int")),
    "readv": (("fd", "fd"), ("iov", "addr"), ("iovcnt", "int")),
    "writev": (("fd", "fd"), ("iov", "addr"), ("iovcnt", "int")),
    "open": (("pathname", "addr"), ("flags", "open_flags"), ("mode", "mode")),
    "openat": (("dirfd", "fd"), ("pathname", "addr"), ("flags", "open_flags"),
               ("mode", "mode")),
    "close": (("fd", "fd"),),
    "stat": (("pathname", "addr"), ("statbuf", "addr")),
    "lstat": (("pathname", "addr"), ("statbuf", "addr")),
    "fstat": (("fd", "fd"), ("statbuf", "addr")),
    "newfstatat": (("dirfd", "fd"), ("pathname", "addr"), ("statbuf", "addr"),
                   ("flags", "flags")),
    "lseek": (("fd", "fd"), ("offset", "int"), ("whence", "whence")),
    "mmap": (("addr", "addr"), ("length", "size"), ("prot", "prot"), ("flags", "mmap_flags"),
             ("fd", "fd"), ("offset", "size")),
    "mprotect": (("addr", "addr"), ("len", "size"), ("prot", "prot")),
    "munmap": (("addr", "addr"), ("length", "size")),
    "mremap": (("old_address", "addr"), ("old_size", "size"), ("new_size", "size"),
               ("flags", "mremap_flags"), ("new_address", "addr")),
    "madvise": (("addr", "addr"), ("length", "size"), ("advice", "madvise")),
    "brk": (("addr", "addr"),),
    "ioctl": (("fd", "fd"), ("request", "flags"), ("arg", "addr")),
    "access": (("pathname", "addr"), ("mode", "int")),
    "dup": (("oldfd", "fd"),),
    "dup2": (("oldfd", "fd"), ("newfd", "fd")),
    "fcntl": (("fd", "fd"), ("cmd", "int"), ("arg", "flags")),
    "getpid": (), "gettid": (), "getppid": (), "getuid": (), "geteuid": (), "getgid": (),
    "getegid": (), "sched_yield": (), "pause": (),
    "exit": (("status", "int"),),
    "exit_group": (("status", "int"),),
    "kill": (("pid", "int"), ("sig", "int")),
    "tgkill": (("tgid", "int"), ("tid", "int"), ("sig", "int")),
    "uname": (("buf", "addr"),),
    "arch_prctl": (("code", "arch_prctl"), ("addr", "addr")),
    "set_tid_address": (("tidptr", "addr"),),
    "set_robust_list": (("head", "addr"), ("len", "size")),
    "rt_sigaction": (("sig", "int"), ("act", "addr"), ("oact", "addr"),
                     ("sigsetsize", "size")),
    "rt_sigprocmask": (("how", "int"), ("set", "addr"), ("oldset", "addr"),
                       ("sigsetsize", "size")),
    "sigaltstack": (("ss", "addr"), ("old_ss", "addr")),
    "nanosleep": (("req", "addr"), ("rem", "addr")),
    "clock_gettime": (("clockid", "int"), ("tp", "addr")),
    "clock_nanosleep": (("clockid", "int"), ("flags", "flags"), ("request", "addr"),
                        ("remain", "addr")),
    "gettimeofday": (("tv", "addr"), ("tz", "addr")),
    "time": (("tloc", "addr"),),
    "getrandom": (("buf", "addr"), ("buflen", "size"), ("flags", "flags")),
    "getcwd": (("buf", "addr"), ("size", "size")),
    "readlink": (("pathname", "addr"), ("buf", "addr"), ("bufsiz", "size")),
    "readlinkat": (("dirfd", "fd"), ("pathname", "addr"), ("buf", "addr"),
                   ("bufsiz", "size")),
    "getdents64": (("fd", "fd"), ("dirp", "addr"), ("count", "size")),
    "prlimit64": (("pid", "int"), ("resource", "int"), ("new_limit", "addr"),
                  ("old_limit", "addr")),
    "getrlimit": (("resource", "int"), ("rlim", "addr")),
    "setrlimit": (("resource", "int"), ("rlim", "addr")),
    "sysinfo": (("info", "addr"),),
    "futex": (("uaddr", "addr"), ("futex_op", "int"), ("val", "int"), ("timeout", "addr"),
              ("uaddr2", "addr"), ("val3", "int")),
    "rseq": (("rseq", "addr"), ("rseq_len", "size"), ("flags", "flags"), ("sig", "flags")),
    "poll": (("fds", "addr"), ("nfds", "int"), ("timeout", "int")),
    "pipe": (("pipefd", "addr"),),
    "pipe2": (("pipefd", "addr"), ("flags", "open_flags")),
}


def describe_args(name: str, args: list[int]) -> str:
    """`fd=1 (stdout), buf=0x402000, count=14` for a syscall's argument registers; a
    syscall without a signature here shows its six registers in hex."""
    signature = SIGNATURES.get(name)
    if signature is None:
        return ", ".join(f"{value:#x}" for value in args)
    return ", ".join(f"{arg}={KINDS[kind](int(value))}"
                     for (arg, kind), value in zip(signature, args))


def describe_ret(name: str, ret: int | None) -> str:
    """The return value: an address in hex, an error as `-ENOMEM`, a count in decimal
    (`exit` does not return: empty)."""
    if ret is None:
        return ""
    if -4096 < ret < 0:
        return f"-{errno.errorcode.get(-ret, str(-ret))}"
    if ret > 4096 and name in ("brk", "mmap", "mremap", "sbrk"):
        return f"{ret:#x}"
    return f"{ret:,}" if ret < 1 << 40 else f"{ret:#x}"

"""Register names and snapshots of the x86-64 general-purpose state."""

from __future__ import annotations

from unicorn import Uc
from unicorn import x86_const as x

GPR_NAMES = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
             "r12", "r13", "r14", "r15", "rip", "eflags", "fs_base", "gs_base")
_IDS = {name: getattr(x, f"UC_X86_REG_{name.upper()}") for name in GPR_NAMES}


def read_registers(uc: Uc) -> dict[str, int]:
    """All general-purpose registers, RIP, EFLAGS and the FS/GS bases, by name."""
    return {name: uc.reg_read(reg_id) for name, reg_id in _IDS.items()}


# Everything a program can observe of the CPU: what two engines must agree on to be in the
# same state. Unicorn's saved context also holds QEMU's lazily evaluated flags (cc_op,
# cc_src, ...), whose bytes depend on where a translated block ended, not on the program.
_ARCHITECTURAL = tuple(
    getattr(x, f"UC_X86_REG_{name}") for name in (
        *(n.upper() for n in GPR_NAMES), "CS", "SS", "DS", "ES", "FS", "GS",
        *(f"XMM{i}" for i in range(16)), "MXCSR", "FPCW", "FPSW", "FPTAG",
        *(f"FP{i}" for i in range(8))))


def architectural_state(uc: Uc) -> tuple:
    """The program-visible CPU state (GPRs, RIP, EFLAGS, segments and bases, SSE, x87)."""
    return tuple(uc.reg_read(reg) for reg in _ARCHITECTURAL)

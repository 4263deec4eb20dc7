"""The CPU a Linux process starts on: the x87 and SSE control state the kernel gives a new
process, and a CPUID that describes only what the emulator executes, deterministically.

Both the recorder and the replay engine set the CPU up through here, so that a replay sees
the same CPU as the recording."""

from __future__ import annotations

import functools

from unicorn import UC_ARCH_X86, UC_HOOK_INSN, UC_MODE_64, Uc
from unicorn import x86_const as x

# fpu__init: the x87 control word with every exception masked and 64-bit precision, and
# MXCSR with every SSE exception masked, round to nearest. Unicorn starts both at 0 (single
# precision, exceptions unmasked), which changes long double results.
LINUX_FPCW = 0x037F
LINUX_MXCSR = 0x1F80
# Leaf 1 ECX bit 30: RDRAND. QEMU executes it, but with host randomness: a recording could
# not be replayed. Programs that check CPUID (libc does) do not use it.
_RDRAND = 1 << 30
_CPUID_CODE = b"\x0f\xa2"  # cpuid
_PROBE_ADDR = 0x1000


def start_like_linux(uc: Uc) -> None:
    """Puts the engine's x87/SSE control state where Linux puts a new process's, and makes
    CPUID answer from `cpuid` (to be called once, before the first instruction)."""
    uc.reg_write(x.UC_X86_REG_FPCW, LINUX_FPCW)
    uc.reg_write(x.UC_X86_REG_MXCSR, LINUX_MXCSR)
    uc.hook_add(UC_HOOK_INSN, _on_cpuid, aux1=x.UC_X86_INS_CPUID)


def _on_cpuid(uc: Uc, _user) -> bool:
    leaf = uc.reg_read(x.UC_X86_REG_EAX) & 0xFFFFFFFF
    subleaf = uc.reg_read(x.UC_X86_REG_ECX) & 0xFFFFFFFF
    for reg, value in zip((x.UC_X86_REG_RAX, x.UC_X86_REG_RBX, x.UC_X86_REG_RCX,
                           x.UC_X86_REG_RDX), cpuid(leaf, subleaf)):
        uc.reg_write(reg, value)  # a 32-bit result zero-extends into the 64-bit register
    return True  # answered: Unicorn does not run its own CPUID


@functools.cache
def cpuid(leaf: int, subleaf: int) -> tuple[int, int, int, int]:
    """EAX, EBX, ECX, EDX for one leaf: the emulated CPU's own answer (QEMU lists only the
    features its translator implements: SSE up to SSE4.2, SSSE3, POPCNT, BMI1/2, MOVBE,
    AES, PCLMULQDQ, ERMS, no AVX), with RDRAND removed."""
    uc = _probe()
    uc.mem_write(_PROBE_ADDR, _CPUID_CODE)
    uc.reg_write(x.UC_X86_REG_RAX, leaf)
    uc.reg_write(x.UC_X86_REG_RCX, subleaf)
    uc.emu_start(_PROBE_ADDR, _PROBE_ADDR + len(_CPUID_CODE))
    eax, ebx, ecx, edx = (uc.reg_read(r) & 0xFFFFFFFF for r in (
        x.UC_X86_REG_RAX, x.UC_X86_REG_RBX, x.UC_X86_REG_RCX, x.UC_X86_REG_RDX))
    if leaf == 1:
        ecx &= ~_RDRAND
    return eax, ebx, ecx, edx


@functools.cache
def _probe() -> Uc:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(_PROBE_ADDR, 0x1000)
    return uc

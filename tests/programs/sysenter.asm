; sysenter is no way into Linux from 64-bit code: on AMD CPUs (this host) it raises #UD in
; long mode and Linux delivers SIGILL at it. Unicorn would run it as a no-op.
section .text
    global _start
_start:
    mov eax, 60
fault:
    sysenter
    xor edi, edi
    syscall

; cli is privileged: at CPL 3 it raises #GP and Linux kills the process with SIGSEGV at the
; cli (label `fault`). Unicorn runs the guest at CPL 0 and would execute it.
section .text
    global _start
_start:
    nop
fault:
    cli
    mov eax, 60
    xor edi, edi
    syscall

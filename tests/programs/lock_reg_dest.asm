; `lock and bh, [rax]`: a lockable instruction whose destination is a register (capstone
; decodes it) raises #UD: SIGILL, before its memory operand is read.
section .bss
    cell resq 1
section .text
    global _start
_start:
    lea rax, [cell]
fault:
    db 0xf0, 0x22, 0x38
    mov eax, 60
    xor edi, edi
    syscall

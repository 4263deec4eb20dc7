; int1 (icebp, opcode F1) raises a debug trap: Linux delivers SIGTRAP. Unicorn calls it an
; invalid instruction.
section .text
    global _start
_start:
    nop
fault:
    db 0xf1
    mov eax, 60
    xor edi, edi
    syscall

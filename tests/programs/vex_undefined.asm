; An undefined VEX encoding: VEX.128 with no SIMD prefix and opcode FC (the MMX paddb has no
; VEX form) raises #UD: SIGILL. Unicorn would run it.
section .text
    global _start
_start:
    nop
fault:
    db 0xc5, 0xf8, 0xfc, 0xc0
    mov eax, 60
    xor edi, edi
    syscall

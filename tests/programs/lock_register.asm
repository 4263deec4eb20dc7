; A lock prefix on an instruction whose destination is a register raises #UD: SIGILL.
section .text
    global _start
_start:
    mov eax, 1
fault:
    db 0xf0, 0x48, 0x01, 0xc0   ; lock add rax, rax
    mov eax, 60
    xor edi, edi
    syscall

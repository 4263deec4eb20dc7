; ud2, the architecturally undefined instruction: #UD, SIGILL at label `fault`.
section .text
    global _start
_start:
    nop
fault:
    ud2
    mov rax, 60
    xor rdi, rdi
    syscall

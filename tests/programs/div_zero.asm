; Unsigned divide by zero: #DE, which Linux turns into SIGFPE at the `div` (label `fault`).
section .text
    global _start
_start:
    mov rax, 7
    xor edx, edx
    xor ecx, ecx
fault:
    div rcx
    mov rax, 60
    xor rdi, rdi
    syscall

; Reading a debug register is privileged (#GP at CPL 3: SIGSEGV), like writing one.
section .text
    global _start
_start:
    nop
fault:
    mov rax, dr0
    mov eax, 60
    xor edi, edi
    syscall

; hlt is privileged: in user mode (CPL 3) it raises #GP, which Linux turns into SIGSEGV.
; The emulator must not treat it as a normal end of the program.
section .text
    global _start
_start:
    nop
fault:
    hlt
    mov rax, 60
    xor rdi, rdi
    syscall

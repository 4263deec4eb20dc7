; Writes just past the program break without moving it first: a fault to explain.
section .text
    global _start
_start:
    mov rax, 12
    xor rdi, rdi
    syscall                 ; rax = the break; nothing is mapped above it
    mov qword [rax + 16], 1 ; SIGSEGV
    mov rax, 60
    xor rdi, rdi
    syscall

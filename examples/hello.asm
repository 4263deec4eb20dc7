; Hello, world: one write(2) of a string in .data, then exit(0).
section .data
    msg db "Hello, world!", 10
    len equ $ - msg

section .text
    global _start
_start:
    mov rax, 1          ; write(
    mov rdi, 1          ;   stdout,
    lea rsi, [msg]      ;   msg,
    mov rdx, len        ;   len)
    syscall
    mov rax, 60         ; exit(0)
    xor rdi, rdi
    syscall

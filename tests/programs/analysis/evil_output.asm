; Prints markup: the report must show it as text, never run it.
section .data
    msg db "</script><img src=x onerror=alert(1)><b>bold?</b>", 10
    len equ $ - msg
section .text
    global _start
_start:
    mov rax, 1
    mov rdi, 1
    lea rsi, [msg]
    mov rdx, len
    syscall
    mov rax, 60
    xor rdi, rdi
    syscall

; fork (syscall 57), a real Linux syscall vmtrace does not emulate: the run must stop with
; an error naming it, keeping the trace up to that point (one write before it).
section .data
    msg db "before fork", 10
section .text
    global _start
_start:
    mov eax, 1
    mov edi, 1
    lea rsi, [msg]
    mov edx, 12
    syscall
    mov eax, 57
    syscall
    mov eax, 60
    xor edi, edi
    syscall

; Syscalls given a pointer to unmapped memory return -EFAULT instead of killing the
; process: write(1, 0x10, 5), uname(0x10), clock_gettime(0, 0x10). Results printed raw.
section .bss
    result resq 1
section .text
    global _start
_start:
    mov eax, 1
    mov edi, 1
    mov esi, 0x10
    mov edx, 5
    syscall
    call emit
    mov eax, 63
    mov edi, 0x10
    syscall
    call emit
    mov eax, 228
    xor edi, edi
    mov esi, 0x10
    syscall
    call emit
    mov eax, 60
    xor edi, edi
    syscall
emit:
    mov [result], rax
    mov eax, 1
    mov edi, 1
    lea rsi, [result]
    mov edx, 8
    syscall
    ret

; readv from stdin into two buffers (5 bytes, then 64), then writev of both plus a
; constant: scatter/gather I/O, each buffer one kernel-side access. Prints the results.
section .data
    sep db " | "
    iov_in  dq buf1, 5, buf2, 64
    iov_out dq buf1, 5, sep, 3, buf2, 0
section .bss
    buf1 resb 5
    buf2 resb 64
    result resq 1
section .text
    global _start
_start:
    xor edi, edi            ; readv(0, iov_in, 2)
    lea rsi, [iov_in]
    mov edx, 2
    mov eax, 19
    syscall
    sub rax, 5
    mov [iov_out + 40], rax ; second buffer: what readv put there
    mov edi, 1              ; writev(1, iov_out, 3)
    lea rsi, [iov_out]
    mov edx, 3
    mov eax, 20
    syscall
    mov [result], rax
    mov eax, 1
    mov edi, 1
    lea rsi, [result]
    mov edx, 8
    syscall
    mov eax, 60
    xor edi, edi
    syscall

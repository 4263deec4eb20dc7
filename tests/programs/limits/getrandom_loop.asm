; getrandom(buf, 32 MiB) forever: each call makes the kernel write 32 MiB into guest memory,
; all of it an input of the run (kernel_writes): for the trace-size limit and memory bounds.
section .bss
    buf resb 32 << 20
section .text
    global _start
_start:
.again:
    mov eax, 318
    lea rdi, [buf]
    mov esi, 32 << 20
    xor edx, edx
    syscall
    jmp .again

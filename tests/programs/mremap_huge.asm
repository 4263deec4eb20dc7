; Lengths Linux refuses: growing a one-page mapping to 1 TiB with mremap, in place and with
; MREMAP_MAYMOVE (-ENOMEM: more than RAM + swap), a new length within a page of 2^64 (it
; wraps to 0 when page-aligned: -EINVAL), and mmap of 2^64 - 1 bytes (-ENOMEM). Prints each
; result as 8 raw bytes; the mapping must still be usable afterwards.
section .bss
    result resq 1
section .text
    global _start
_start:
    mov eax, 9              ; mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    xor edi, edi
    mov esi, 4096
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    syscall
    mov r12, rax
    mov eax, 25             ; mremap(p, 4096, 1 TiB, 0)
    mov rdi, r12
    mov esi, 4096
    mov rdx, 1 << 40
    xor r10d, r10d
    syscall
    call emit
    mov eax, 25             ; mremap(p, 4096, 1 TiB, MREMAP_MAYMOVE)
    mov rdi, r12
    mov esi, 4096
    mov rdx, 1 << 40
    mov r10d, 1
    syscall
    call emit
    mov eax, 25             ; mremap(p, 4096, 2^64 - 1, MREMAP_MAYMOVE)
    mov rdi, r12
    mov esi, 4096
    mov rdx, -1
    mov r10d, 1
    syscall
    call emit
    mov eax, 9              ; mmap(NULL, 2^64 - 1, ...)
    xor edi, edi
    mov rsi, -1
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    syscall
    call emit
    mov byte [r12 + 4095], 7
    movzx edi, byte [r12 + 4095]
    mov eax, 60
    syscall

emit:
    mov [result], rax
    mov eax, 1
    mov edi, 1
    lea rsi, [result]
    mov edx, 8
    syscall
    ret

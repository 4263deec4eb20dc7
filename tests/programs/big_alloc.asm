; Requests Linux refuses under its default overcommit heuristic: brk and mmap of 1 TiB more
; than RAM + swap. brk returns the old break, mmap -ENOMEM. Prints each result as 8 raw
; bytes (brk relative to the initial break).
section .bss
    result resq 1
section .text
    global _start
_start:
    mov eax, 12
    xor edi, edi
    syscall
    mov r12, rax
    mov rdi, 1 << 40
    add rdi, r12
    mov eax, 12             ; brk(start + 1 TiB)
    syscall
    sub rax, r12
    call emit
    mov eax, 9              ; mmap(NULL, 1 TiB, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    xor edi, edi
    mov rsi, 1 << 40
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
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

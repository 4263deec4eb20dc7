; brk stops at another mapping: a MAP_FIXED page 16 pages above the initial break; brk
; may grow to one page below it (a gap page must remain) but not into it. Prints each brk
; result relative to the initial break.
section .bss
    result resq 1
section .text
    global _start
_start:
    mov eax, 12
    xor edi, edi
    syscall
    mov r12, rax
    lea rdi, [r12 + 16*4096] ; mmap(brk + 64 KiB, 4096, RW, PRIVATE|ANONYMOUS|FIXED)
    mov esi, 4096
    mov edx, 3
    mov r10d, 0x32
    mov r8, -1
    xor r9d, r9d
    mov eax, 9
    syscall
    lea rdi, [r12 + 15*4096] ; up to the gap page: allowed
    mov eax, 12
    syscall
    call emit
    lea rdi, [r12 + 15*4096 + 1] ; one byte more needs the gap page: refused
    mov eax, 12
    syscall
    call emit
    lea rdi, [r12 + 20*4096] ; across the mapping: refused
    mov eax, 12
    syscall
    call emit
    mov eax, 60
    xor edi, edi
    syscall
emit:
    sub rax, r12
    mov [result], rax
    mov eax, 1
    mov edi, 1
    lea rsi, [result]
    mov edx, 8
    syscall
    ret

; mremap: grow a one-page mapping to three pages (it may move: MREMAP_MAYMOVE), check the
; first page's contents moved with it, then shrink it to one page. Prints each result
; relative to the initial break, and the moved byte.
section .bss
    result resq 1
section .text
    global _start
_start:
    mov eax, 12
    xor edi, edi
    syscall
    mov r12, rax
    xor edi, edi            ; mmap(NULL, 4096, RW, PRIVATE|ANONYMOUS)
    mov esi, 4096
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    mov eax, 9
    syscall
    mov rbx, rax
    mov byte [rbx], 'm'
    call emit
    mov rdi, rbx            ; mremap(p, 4096, 3*4096, MREMAP_MAYMOVE)
    mov esi, 4096
    mov edx, 3*4096
    mov r10d, 1
    mov eax, 25
    syscall
    mov rbx, rax
    call emit
    mov byte [rbx + 3*4096 - 1], 1
    movzx eax, byte [rbx]
    add rax, r12
    call emit
    mov rdi, rbx            ; mremap(p, 3*4096, 4096, 0): shrink in place
    mov esi, 3*4096
    mov edx, 4096
    xor r10d, r10d
    mov eax, 25
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

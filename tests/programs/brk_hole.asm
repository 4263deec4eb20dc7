; brk after a hole: the heap grows by 3 pages, its middle page is unmapped, the heap grows
; by one more page (Linux maps only the new page: the hole stays), then a store into the
; hole faults (SIGSEGV), natively as in the recording.
section .text
    global _start
_start:
    mov eax, 12
    xor edi, edi
    syscall
    mov r12, rax            ; the initial break (page aligned)
    lea rdi, [r12 + 3*4096]
    mov eax, 12
    syscall
    lea rdi, [r12 + 4096]   ; munmap(the middle page)
    mov esi, 4096
    mov eax, 11
    syscall
    lea rdi, [r12 + 4*4096]
    mov eax, 12
    syscall
    mov byte [r12 + 3*4096 + 8], 1     ; the new page: mapped
    mov byte [r12 + 4096 + 8], 2       ; the hole: faults
    mov eax, 60
    xor edi, edi
    syscall

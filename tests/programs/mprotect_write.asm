; mmap a read-write page, store into it, mprotect it read-only, store again: the second
; store (label `fault`) gets SIGSEGV, as on Linux.
section .text
    global _start
_start:
    xor edi, edi            ; mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    mov esi, 4096
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    mov eax, 9
    syscall
    mov rbx, rax
    mov qword [rbx], 1
    mov rdi, rbx            ; mprotect(page, 4096, PROT_READ)
    mov esi, 4096
    mov edx, 1
    mov eax, 10
    syscall
    mov rax, [rbx]          ; reading is still allowed
fault:
    mov qword [rbx], 2
    mov eax, 60
    xor edi, edi
    syscall

; Anonymous mmap of 3 pages, fill them, unmap the middle one (splitting the region), then
; map 64 KiB more and release everything. Prints the page count it filled.
section .data
    msg db "filled 3 pages", 10
    len equ $ - msg

section .text
    global _start
_start:
    mov rax, 9              ; mmap(NULL, 3*4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
    xor rdi, rdi
    mov rsi, 3*4096
    mov rdx, 3
    mov r10, 0x22
    mov r8, -1
    xor r9, r9
    syscall
    mov rbx, rax

    mov rdi, rbx            ; fill the 3 pages with 0xAB
    mov rcx, 3*4096
    mov al, 0xAB
    rep stosb

    mov rax, 11             ; munmap(middle page)
    lea rdi, [rbx + 4096]
    mov rsi, 4096
    syscall

    mov rax, 9              ; mmap 64 KiB more
    xor rdi, rdi
    mov rsi, 65536
    mov rdx, 3
    mov r10, 0x22
    mov r8, -1
    xor r9, r9
    syscall
    mov r12, rax
    mov qword [r12 + 65528], 42

    mov rax, 1
    mov rdi, 1
    lea rsi, [msg]
    mov rdx, len
    syscall

    mov rax, 11             ; munmap(first page) and munmap(third page)
    mov rdi, rbx
    mov rsi, 4096
    syscall
    mov rax, 11
    lea rdi, [rbx + 8192]
    mov rsi, 4096
    syscall
    mov rax, 11
    mov rdi, r12
    mov rsi, 65536
    syscall

    mov rax, 60
    xor rdi, rdi
    syscall

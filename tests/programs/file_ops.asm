; A host file the user allowed (argv[1]): open, fstat (size at offset 48 of struct stat),
; lseek to offset 6, read the rest, mmap it read-only and write the mapping's first bytes,
; then close. Prints the data and each result as raw bytes.
section .bss
    st resb 144
    buf resb 64
    result resq 1
section .text
    global _start
_start:
    mov rdi, [rsp + 16]     ; open(argv[1], O_RDONLY)
    xor esi, esi
    mov eax, 2
    syscall
    mov r12, rax
    call emit
    mov rdi, r12            ; fstat(fd, &st): st_size
    lea rsi, [st]
    mov eax, 5
    syscall
    call emit
    mov rax, [st + 48]
    call emit
    mov rdi, r12            ; lseek(fd, 6, SEEK_SET)
    mov esi, 6
    xor edx, edx
    mov eax, 8
    syscall
    call emit
    mov rdi, r12            ; read(fd, buf, 64)
    lea rsi, [buf]
    mov edx, 64
    xor eax, eax
    syscall
    mov rdx, rax
    mov eax, 1
    mov edi, 1
    lea rsi, [buf]
    syscall
    xor edi, edi            ; mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0)
    mov esi, 4096
    mov edx, 1
    mov r10d, 2
    mov r8, r12
    xor r9d, r9d
    mov eax, 9
    syscall
    mov r13, rax
    mov eax, 1              ; write(1, mapping, 5)
    mov edi, 1
    mov rsi, r13
    mov edx, 5
    syscall
    mov rdi, r12            ; close(fd), then close(fd) again: -EBADF
    mov eax, 3
    syscall
    call emit
    mov rdi, r12
    mov eax, 3
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

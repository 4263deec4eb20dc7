; open(argv[1], O_RDONLY), read up to 64 bytes, write them to stdout, close. Exit status 0
; after a successful open; otherwise the open's -errno (13 EACCES, 2 ENOENT, ...). Without
; --allow-read vmtrace refuses every path with -EACCES and never opens the host file.
section .bss
    buf resb 64
section .text
    global _start
_start:
    mov rdi, [rsp + 16]     ; argv[1]
    xor esi, esi
    mov eax, 2              ; open(path, O_RDONLY)
    syscall
    test rax, rax
    js .failed
    mov rbx, rax
    mov rdi, rbx
    xor eax, eax            ; read(fd, buf, 64)
    lea rsi, [buf]
    mov edx, 64
    syscall
    mov rdx, rax
    mov eax, 1
    mov edi, 1
    lea rsi, [buf]
    syscall
    mov eax, 3              ; close(fd)
    mov rdi, rbx
    syscall
    xor edi, edi
    mov eax, 60
    syscall
.failed:
    neg rax
    mov rdi, rax
    mov eax, 60
    syscall

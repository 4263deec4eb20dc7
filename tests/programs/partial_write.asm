; write(1, buf, 200) where only the first 100 bytes of buf are mapped: two pages are
; mapped, the second unmapped again, and buf starts 100 bytes before the hole. To a pipe
; (stdout in the tests) Linux writes nothing and returns -EFAULT; to a regular file it would
; write the 100 mapped bytes and return 100. Prints the result as raw bytes.
section .bss
    result resq 1
section .text
    global _start
_start:
    xor edi, edi            ; mmap(NULL, 8192, RW, PRIVATE|ANONYMOUS), filled with 'A'
    mov esi, 8192
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    mov eax, 9
    syscall
    mov rbx, rax
    mov rdi, rax
    mov al, 'A'
    mov ecx, 4096
    rep stosb
    lea rdi, [rbx + 4096]   ; munmap the second page
    mov esi, 4096
    mov eax, 11
    syscall
    mov eax, 1
    mov edi, 1
    lea rsi, [rbx + 4096 - 100]
    mov edx, 200
    syscall
    mov [result], rax
    mov eax, 1
    mov edi, 1
    lea rsi, [result]
    mov edx, 8
    syscall
    mov eax, 60
    xor edi, edi
    syscall

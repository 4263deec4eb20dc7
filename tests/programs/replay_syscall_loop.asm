; Syscalls all through the run, so that keyframes fall between them: each iteration grows
; the heap by a page and writes into it, maps a page and writes into it (unmapping every
; other one), and takes random bytes and the time into a buffer.
section .bss
    buf resq 4
    cur resq 1

section .text
    global _start
_start:
    mov eax, 12             ; brk(0): the initial break
    xor edi, edi
    syscall
    mov [cur], rax
    mov r15, 40             ; iterations
.loop:
    mov rdi, [cur]          ; brk(cur + 4096)
    add rdi, 4096
    mov eax, 12
    syscall
    mov [cur], rax
    mov [rax - 8], r15      ; write into the new heap page
    mov eax, 9              ; mmap(NULL, 4096, RW, PRIVATE|ANONYMOUS)
    xor edi, edi
    mov esi, 4096
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    syscall
    mov [rax + 16], r15
    test r15, 1
    jz .keep
    mov rdi, rax            ; munmap it on odd iterations
    mov esi, 4096
    mov eax, 11
    syscall
.keep:
    mov eax, 318            ; getrandom(buf, 8, 0)
    lea rdi, [buf]
    mov esi, 8
    xor edx, edx
    syscall
    mov eax, 228            ; clock_gettime(CLOCK_REALTIME, buf + 16)
    xor edi, edi
    lea rsi, [buf + 16]
    syscall
    add rbx, [buf]
    dec r15
    jnz .loop
    xor edi, edi            ; (not the random sum: natively it differs run to run)
    mov eax, 60
    syscall

; brk/mmap churn: ROUNDS rounds of growing the break by 64 KiB, touching each new page,
; shrinking it back, then mmap-ing 64 KiB anonymous, touching it, and unmapping it.
; Size: nasm -DROUNDS=N.
%ifndef ROUNDS
%define ROUNDS 100
%endif
%define GROW 65536
%define PAGE 4096

section .text
    global _start
_start:
    mov rax, 12             ; brk(0): the current break
    xor rdi, rdi
    syscall
    mov r12, rax
    mov r13, ROUNDS
.round:
    mov rax, 12             ; brk(+64 KiB)
    lea rdi, [r12 + GROW]
    syscall
    mov rdi, r12
    call touch
    mov rax, 12             ; brk back
    mov rdi, r12
    syscall

    mov rax, 9              ; mmap(NULL, 64 KiB, RW, PRIVATE|ANONYMOUS, -1, 0)
    xor rdi, rdi
    mov rsi, GROW
    mov rdx, 3
    mov r10, 0x22
    mov r8, -1
    xor r9, r9
    syscall
    mov r14, rax
    mov rdi, rax
    call touch
    mov rax, 11             ; munmap
    mov rdi, r14
    mov rsi, GROW
    syscall
    dec r13
    jnz .round

    mov rax, 60
    xor rdi, rdi
    syscall

; touch(rdi): write and read back one qword every 64 bytes of GROW bytes at rdi
touch:
    mov rcx, GROW / 64
.next:
    mov [rdi], rcx
    add rax, [rdi]
    add rdi, 64
    dec rcx
    jnz .next
    ret

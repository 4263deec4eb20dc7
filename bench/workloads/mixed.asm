; The shape of ordinary compiled code, the headline workload: each of ITERS iterations
; loads from a table, stores into a buffer, pushes and pops two registers around a call
; into a function with a frame (push rbp / mov rbp, rsp / a local / leave / ret), and
; every 64 iterations copies 64 bytes with rep movsb. Per iteration ~22 instructions,
; ~14 memory events and 8 RSP changes (calls, frames, pushes and pops, not just a loop).
; Size: nasm -DITERS=N.
%ifndef ITERS
%define ITERS 100000
%endif

section .data
    align 8
table:
%assign i 0
%rep 256
    dq i * 2654435761
%assign i i + 1
%endrep

section .bss
    buf resq 256
    src resb 64
    dst resb 64

section .text
    global _start
_start:
    mov rcx, ITERS
    xor ebx, ebx
    xor edx, edx
.loop:
    mov rax, [table + rbx * 8]      ; table load
    mov [buf + rbx * 8], rax        ; store
    push rax
    push rbx
    mov rdi, rax
    call work
    pop rbx
    pop rax
    add rdx, rax
    test ecx, 63
    jnz .next
    push rcx                        ; every 64 iterations: a 64-byte string copy
    lea rsi, [src]
    lea rdi, [dst]
    mov ecx, 64
    rep movsb
    pop rcx
.next:
    inc ebx
    and ebx, 255
    dec rcx
    jnz .loop

    mov rax, 60
    xor edi, edi
    syscall

; A function with a frame and one local, as a compiler at -O0 writes it.
work:
    push rbp
    mov rbp, rsp
    mov [rbp - 8], rdi
    mov rax, [rbp - 8]
    imul rax, rax, 3
    leave
    ret

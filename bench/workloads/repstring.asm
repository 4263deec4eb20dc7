; String instructions: REPS rounds of rep stosq (fill), rep movsq (copy), rep movsb
; (byte copy) and rep stosb over 16 KiB buffers. Size: nasm -DREPS=N.
%ifndef REPS
%define REPS 10
%endif
%define BYTES 16384

section .bss
    src resb BYTES
    dst resb BYTES

section .text
    global _start
_start:
    cld
    mov r8, REPS
    mov rax, 0x0101010101010101
.round:
    lea rdi, [src]          ; rep stosq: fill src with this round's pattern
    mov rcx, BYTES / 8
    rep stosq
    lea rsi, [src]          ; rep movsq: copy src to dst
    lea rdi, [dst]
    mov rcx, BYTES / 8
    rep movsq
    lea rsi, [dst]          ; rep movsb: copy dst back to src byte by byte
    lea rdi, [src]
    mov rcx, BYTES
    rep movsb
    lea rdi, [dst]          ; rep stosb: clear dst
    mov rcx, BYTES
    push rax
    xor eax, eax
    rep stosb
    pop rax
    add rax, r8
    dec r8
    jnz .round

    mov rax, 60
    xor rdi, rdi
    syscall

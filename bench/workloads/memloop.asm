; Memory-heavy loop: ITERS passes of a read-modify-write sweep over an 8 KiB array of
; qwords (a running sum), so most instructions load or store. Size: nasm -DITERS=N.
%ifndef ITERS
%define ITERS 1000
%endif
%define WORDS 1024

section .bss
    array resq WORDS

section .text
    global _start
_start:
    mov r8, ITERS
    xor rax, rax
.pass:
    lea rsi, [array]
    mov rcx, WORDS / 4
.sweep:
    add rax, [rsi]           ; 4 loads and 4 stores per 11 instructions
    mov [rsi], rax
    add rax, [rsi + 8]
    mov [rsi + 8], rax
    add rax, [rsi + 16]
    mov [rsi + 16], rax
    add rax, [rsi + 24]
    mov [rsi + 24], rax
    add rsi, 32
    dec rcx
    jnz .sweep
    inc rax
    dec r8
    jnz .pass

    mov rax, 60
    xor rdi, rdi
    syscall

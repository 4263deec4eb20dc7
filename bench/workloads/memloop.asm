; Memory-heavy loop: ITERS passes over an 8 KiB array of qwords, 8 memory events in every
; 11 instructions (read-modify-write `add [mem], reg`, and load / add / store). Each
; element counts up by the pass number, the kind of values counters and indexes hold.
; Size: nasm -DITERS=N. With -DHASH_VALUES every store writes a running 64-bit sum instead,
; values as random as a hash's (the worst case for compressing the trace's value column).
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
%ifdef HASH_VALUES
    add rax, [rsi]
    mov [rsi], rax
    add rax, [rsi + 8]
    mov [rsi + 8], rax
    add rax, [rsi + 16]
    mov [rsi + 16], rax
    add rax, [rsi + 24]
    mov [rsi + 24], rax
%else
    add [rsi], r8
    mov rax, [rsi + 8]
    add rax, r8
    mov [rsi + 8], rax
    add [rsi + 16], rcx
    mov rax, [rsi + 24]
    add rax, rcx
    mov [rsi + 24], rax
%endif
    add rsi, 32
    dec rcx
    jnz .sweep
    inc rax
    dec r8
    jnz .pass

    mov rax, 60
    xor rdi, rdi
    syscall

; String instructions: rep movsb copies, rep stosq fills, repne scasb finds a length,
; lodsb walks, and SSE movdqu moves 16 bytes at a time. Prints the copied string.
section .data
    src db "string ops copy bytes", 10
    srclen equ $ - src

section .bss
    dst resb 64
    wide resq 8

section .text
    global _start
_start:
    cld
    lea rsi, [src]          ; rep movsb: one byte per iteration
    lea rdi, [dst]
    mov rcx, srclen
    rep movsb

    lea rdi, [wide]         ; rep stosq: 8 qwords of 0x0101...
    mov rax, 0x0101010101010101
    mov rcx, 8
    rep stosq

    lea rdi, [dst]          ; repne scasb: find the newline
    mov al, 10
    mov rcx, 64
    repne scasb

    lea rsi, [src]          ; lodsb x4
    lodsb
    lodsb
    lodsb
    lodsb

    movdqu xmm0, [src]      ; one 16-byte load and one 16-byte store
    movdqu [wide], xmm0

    mov rax, 1
    mov rdi, 1
    lea rsi, [dst]
    mov rdx, srclen
    syscall
    mov rax, 60
    xor rdi, rdi
    syscall

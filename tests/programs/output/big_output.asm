; Writes 8 MiB of output: "first line", then 1,048,576 lines of "AAAAAAA", then
; "last line". `trace info` shows the start and the end, not all of it.
section .data
    first db "first line", 10
    first_len equ $ - first
    last db "last line", 10
    last_len equ $ - last
section .bss
    buf resb 1 << 20
section .text
    global _start
_start:
    mov eax, 1
    mov edi, 1
    lea rsi, [first]
    mov edx, first_len
    syscall
    lea rdi, [buf]                  ; 128 Ki copies of "AAAAAAA\n"
    mov rax, 0x0a41414141414141
    mov ecx, (1 << 20) / 8
    rep stosq
    mov ebx, 8
.again:
    mov eax, 1
    mov edi, 1
    lea rsi, [buf]
    mov edx, 1 << 20
    syscall
    dec ebx
    jnz .again
    mov eax, 1
    mov edi, 1
    lea rsi, [last]
    mov edx, last_len
    syscall
    mov eax, 60
    xor edi, edi
    syscall

; A long loop of pushes and pops: a trace with millions of access and RSP rows, for the
; commands that must answer without reading them (trace info).
section .text
    global _start
_start:
    mov ecx, 1000000
.loop:
    push rcx
    pop rax
    dec ecx
    jnz .loop
    mov eax, 60
    xor edi, edi
    syscall

; i386 syscalls through `int 0x80` from 64-bit code: write, getpid, exit(3). The replay must
; take them from the interrupt hook (RIP after the instruction, no RCX/R11 clobber).
section .data
msg db "hi via int 0x80", 10
section .text
global _start
_start:
    mov eax, 4          ; i386 write
    mov ebx, 1
    mov ecx, msg
    mov edx, 16
    int 0x80
    push rax
    mov eax, 20         ; getpid
    int 0x80
    mov eax, 1
    mov ebx, 3
    int 0x80

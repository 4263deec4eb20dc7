; The 32-bit syscall ABI from a 64-bit program: int 0x80 with i386 numbers (4 = write,
; 1 = exit) and arguments in ebx, ecx, edx. Linux (with IA32 emulation) runs them.
section .data
    msg db "via int 0x80", 10
section .text
    global _start
_start:
    mov eax, 4
    mov ebx, 1
    mov ecx, msg
    mov edx, 13
    int 0x80
    mov eax, 1
    mov ebx, 3
    int 0x80

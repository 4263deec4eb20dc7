; A lock prefix on an instruction that cannot be locked (mov), even with a memory
; destination, raises #UD: SIGILL. Unicorn would run the store.
section .bss
    cell resq 1
section .text
    global _start
_start:
    lea rax, [cell]
fault:
    db 0xf0, 0x48, 0x89, 0x18   ; lock mov [rax], rbx
    mov eax, 60
    xor edi, edi
    syscall

; A load at a non-canonical address through a base register other than RSP or RBP raises a
; general protection fault (#GP): SIGSEGV.
section .text
    global _start
_start:
    mov rbx, 0x800000000000
fault:
    mov rax, [rbx + 8]
    mov eax, 60
    xor edi, edi
    syscall

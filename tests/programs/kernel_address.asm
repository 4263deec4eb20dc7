; A load from the kernel half of the address space (canonical, never mapped for a user
; process): SIGSEGV at the full 64-bit address (Unicorn's fault hook sees its low 52 bits).
section .text
    global _start
_start:
    mov rbx, 0xffffffff81000000
fault:
    mov rax, [rbx]
    mov eax, 60
    xor edi, edi
    syscall

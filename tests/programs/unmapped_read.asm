; Load from an address nothing is mapped at (256 MiB, between the program and the heap's
; reach): SIGSEGV at `fault`, after 1 instruction.
section .text
    global _start
_start:
    mov rbx, 0x10000000
fault:
    mov rax, [rbx]
    mov rax, 60
    xor rdi, rdi
    syscall

; Store into the program's own code: .text is mapped r-x, so Linux delivers SIGSEGV at
; the `mov` (label `fault`), after 1 instruction.
section .text
    global _start
_start:
    mov al, 0x90
fault:
    mov [_start], al
    mov rax, 60
    xor rdi, rdi
    syscall

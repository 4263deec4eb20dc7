; Control registers that do not exist (CR1, CR5-CR7, CR9-CR15) make `mov` from them #UD
; (SIGILL) before its privilege is checked; mov from CR0 would be #GP (SIGSEGV).
section .text
    global _start
_start:
    nop
fault:
    mov rax, cr1
    mov eax, 60
    xor edi, edi
    syscall

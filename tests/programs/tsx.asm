; The TSX instructions (xbegin, xend, xabort, xtest) do not exist on AMD CPUs and are
; disabled on most Intel ones: #UD, SIGILL (found by the fuzz test: Unicorn ran xabort).
section .text
    global _start
_start:
    nop
fault:
    xtest
    mov eax, 60
    xor edi, edi
    syscall

; A misaligned 16-byte store: movdqa [mem], xmm raises #GP (SIGSEGV) before it writes
; anything, so the trace holds no write of it. The access is a write.
section .bss
    alignb 16
    dst resb 64
section .text
    global _start
_start:
    pcmpeqb xmm0, xmm0
    movdqa [dst + 16], xmm0     ; aligned: runs
fault:
    movdqa [dst + 36], xmm0     ; 4 bytes off
    mov eax, 60
    xor edi, edi
    syscall

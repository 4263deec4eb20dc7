; Not only moves: a legacy-SSE arithmetic instruction with a 16-byte memory operand needs
; it aligned too (addps xmm, m128 raises #GP, SIGSEGV). Its VEX form (vaddps) does not.
section .data
    align 16
    vals dd 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0
section .text
    global _start
_start:
    xorps xmm0, xmm0
    vaddps xmm1, xmm0, [vals + 4]   ; VEX: unaligned is fine
    addps xmm0, [vals]              ; aligned: runs
fault:
    addps xmm0, [vals + 4]
    mov eax, 60
    xor edi, edi
    syscall

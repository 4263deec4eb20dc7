; VEX arithmetic takes unaligned operands, but the VEX aligned moves keep the check:
; vmovaps xmm, m128 at an address 8 bytes off raises #GP (SIGSEGV).
section .data
    align 16
    buf times 48 db 3
section .text
    global _start
_start:
    vmovaps xmm0, [buf + 16]    ; aligned: runs
fault:
    vmovaps xmm1, [buf + 8]
    mov eax, 60
    xor edi, edi
    syscall

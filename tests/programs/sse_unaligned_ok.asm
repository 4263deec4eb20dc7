; SSE and AVX instructions whose memory operand may be unaligned run as on Linux: movups,
; movupd, movdqu, lddqu, the scalar and 8-byte forms, VEX arithmetic and unaligned VEX
; moves, all at odd addresses. Prints the bytes it built and exits 0.
section .data
    align 16
    src db "0123456789abcdefghijklmnopqrstuvwxyz!?"
section .bss
    alignb 16
    dst resb 64
section .text
    global _start
_start:
    movups xmm0, [src + 1]
    movupd xmm1, [src + 3]
    movdqu xmm2, [src + 5]
    lddqu xmm3, [src + 7]
    movq xmm4, [src + 9]
    movss xmm5, [src + 11]
    addss xmm5, [src + 13]
    movsd xmm6, [src + 15]
    vmovdqu xmm7, [src + 17]
    vpaddb xmm7, xmm7, [src + 19]
    vpsubb xmm7, xmm7, [src + 19]
    movdqu [dst + 1], xmm0
    movups [dst + 17], xmm2
    vmovdqu [dst + 33], xmm7
    mov eax, 1
    mov edi, 1
    lea rsi, [dst + 1]
    mov edx, 48
    syscall
    mov eax, 60
    xor edi, edi
    syscall

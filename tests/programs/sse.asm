; 16-byte SSE moves are one 16-byte access each (the emulator splits them in halves; the
; recorder joins them): movdqu load/store at an unaligned address, movaps/movdqa at an
; aligned one, movups; plus 8-byte movq and 4-byte movd. Prints the 48 bytes it built.
section .data
    align 16
    src db "0123456789abcdef", "ghijklmnopqrstuv"
section .bss
    alignb 16
    dst resb 48
section .text
    global _start
_start:
    movdqu xmm0, [src + 3]      ; unaligned 16-byte load
    movdqu [dst + 1], xmm0      ; unaligned 16-byte store
    movaps xmm1, [src + 16]     ; aligned 16-byte load
    movaps [dst + 16], xmm1     ; aligned 16-byte store
    movdqa xmm2, [src]
    movups [dst + 32], xmm2
    movq xmm3, [src + 8]        ; 8-byte load
    movq [dst + 40], xmm3       ; 8-byte store
    movd xmm4, [src + 4]        ; 4-byte load
    movd [dst], xmm4            ; 4-byte store
    mov eax, 1
    mov edi, 1
    lea rsi, [dst]
    mov edx, 48
    syscall
    mov eax, 60
    xor edi, edi
    syscall

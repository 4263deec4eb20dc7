; The alignment check is on the linear address, segment base included: with FS based 8
; bytes into an aligned buffer (arch_prctl ARCH_SET_FS), movaps xmm0, [fs:0] is misaligned
; although its offset is 0. The RIP-relative movaps before it is aligned and runs.
default rel
section .data
    align 16
    buf times 64 db 5
section .text
    global _start
_start:
    mov eax, 158                ; arch_prctl(ARCH_SET_FS, buf + 8)
    mov edi, 0x1002
    lea rsi, [buf + 8]
    syscall
    movaps xmm1, [buf + 32]     ; RIP-relative, aligned
fault:
    movaps xmm0, [fs:0]
    mov eax, 60
    xor edi, edi
    syscall

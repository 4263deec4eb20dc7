; movaps needs a 16-byte aligned operand: at CPL 3 a misaligned one raises #GP and Linux
; kills the process with SIGSEGV at the movaps (label `fault`). Unicorn does not check
; alignment and would go on. The address is base + index * scale, 8 bytes off.
section .data
    align 16
    buf times 64 db 7
section .text
    global _start
_start:
    lea rbx, [buf]
    mov ecx, 1
    movaps xmm1, [rbx + rcx*8 + 8]    ; buf + 16: aligned, runs
fault:
    movaps xmm0, [rbx + rcx*8]        ; buf + 8: misaligned
    mov eax, 60
    xor edi, edi
    syscall

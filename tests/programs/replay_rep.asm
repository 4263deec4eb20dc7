; rep string instructions between ordinary ones, for the gdb comparison: a step is what the
; CPU single-steps, one per iteration (QEMU also enters a finished rep once more to find
; RCX exhausted: that is no step). Also a rep with RCX = 0 (one step, no iteration), a
; repe cmpsb that runs to the end of its count, and an address-size prefix (count in ECX).
section .data
    src db "abcdefgh"
    same db "abcdefgh"
section .bss
    dst resb 16

section .text
    global _start
_start:
    cld
    lea rsi, [src]
    lea rdi, [dst]
    mov ecx, 5
    rep movsb
    mov al, 0x2a
    mov ecx, 3
    rep stosb
    xor ecx, ecx
    rep stosb               ; RCX = 0: nothing stored
    add rax, rcx
    lea rdi, [dst]
    mov ecx, 2
    rep stosb
    lea rsi, [src]
    lea rdi, [same]
    mov ecx, 8
    repe cmpsb              ; all equal: runs until RCX = 0
    lea edi, [dst + 8]
    mov ecx, 3
    a32 rep stosb           ; count and pointer are ECX and EDI
    mov rdi, [dst]
    and edi, 0x7f
    mov eax, 60
    syscall

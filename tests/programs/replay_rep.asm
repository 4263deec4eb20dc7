; rep string instructions between ordinary ones, for the gdb comparison: our trace counts one
; step per iteration plus a final step that finds RCX exhausted (QEMU's model), a debugger's
; stepi counts the iterations only. Also a rep with RCX = 0, which both count as one step.
section .data
    src db "abcdefgh"
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
    mov rdi, [dst]
    and edi, 0x7f
    mov eax, 60
    syscall

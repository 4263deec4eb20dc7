; Self-modifying code in a writable, executable section: the 3 bytes at `patch` run first
; as three nops, are then rewritten into push rax / pop rax / nop, and run again. The
; second run pushes and pops: its RSP changes and the implicit accesses must be recorded.
section .smc progbits alloc exec write
    global _start
_start:
    xor ebx, ebx
again:
patch:
    nop
    nop
    nop
    test ebx, ebx
    jnz done
    mov byte [patch], 0x50      ; push rax
    mov byte [patch + 1], 0x58  ; pop rax
    inc ebx
    jmp again
done:
    mov eax, 60
    xor edi, edi
    syscall

; Assignment: print the sum 1 + 2 + ... + 100, computed by a recursive function.
; frank: does not assemble (a typo in a mnemonic and a register that does not exist).
section .text
    global _start
_start:
    mov rdi, 100
    cal sum
    mov eax, 60
    xor edi, edi
    syscall

sum:
    test rdi, rdi
    jz .zero
    push rdi
    dec rdi
    call sum
    pop rdi
    add rax, rdx9
    ret
.zero:
    xor eax, eax
    ret

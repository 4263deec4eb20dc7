; Assignment: print the sum 1 + 2 + ... + 100, computed by a recursive function.
; dave: the base case is missing, so the recursion never stops and the stack overflows
; (SIGSEGV once it passes the 8 MiB limit).
section .text
    global _start
_start:
    mov rdi, 100
    call sum
    mov eax, 60
    xor edi, edi
    syscall

sum:                        ; forgot: test rdi, rdi / jz .zero
    push rdi
    sub rsp, 504            ; a local buffer "for later"
    dec rdi
    call sum
    add rsp, 504
    pop rdi
    add rax, rdi
    ret

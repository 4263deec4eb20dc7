; Assignment: print the sum 1 + 2 + ... + 100, computed by a recursive function.
; alice: correct. sum(n) = n + sum(n - 1), sum(0) = 0; prints "5050".
section .bss
    digits resb 24
section .text
    global _start
_start:
    mov rdi, 100
    call sum
    mov rdi, rax
    call print_number
    mov eax, 60
    xor edi, edi
    syscall

sum:                        ; rax = rdi + sum(rdi - 1)
    test rdi, rdi
    jz .zero
    push rdi
    dec rdi
    call sum
    pop rdi
    add rax, rdi
    ret
.zero:
    xor eax, eax
    ret

print_number:               ; writes rdi in decimal and a newline
    lea rsi, [digits + 23]
    mov byte [rsi], 10
    mov rax, rdi
    mov rcx, 10
.next:
    xor edx, edx
    div rcx
    add dl, '0'
    dec rsi
    mov [rsi], dl
    test rax, rax
    jnz .next
    lea rdx, [digits + 24]
    sub rdx, rsi
    mov eax, 1
    mov edi, 1
    syscall
    ret

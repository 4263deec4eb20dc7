; Initialised data (.data), read-only data (.rodata) and zeroed storage (.bss): reads of
; each, writes to .data and .bss, and a sum printed as one digit.
section .rodata
    table dq 1, 2, 3, 4
section .data
    counter dq 10
    label db "sum=", 0
section .bss
    buffer resq 16
    digit resb 2

section .text
    global _start
_start:
    xor rax, rax
    xor rcx, rcx
.sum:                        ; rax = sum of table (10)
    add rax, [table + rcx*8]
    mov [buffer + rcx*8], rax
    inc rcx
    cmp rcx, 4
    jne .sum
    sub rax, [counter]       ; 10 - 10 = 0
    add qword [counter], 1   ; counter = 11 (read-modify-write)
    add al, '0' + 7          ; '7'
    mov [digit], al
    mov byte [digit + 1], 10

    mov rax, 1
    mov rdi, 1
    lea rsi, [label]
    mov rdx, 4
    syscall
    mov rax, 1
    mov rdi, 1
    lea rsi, [digit]
    mov rdx, 2
    syscall

    mov rax, 60
    mov rdi, [counter]       ; exit status 11
    syscall

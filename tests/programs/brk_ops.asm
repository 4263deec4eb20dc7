; brk(2) results, each printed as 8 raw bytes relative to the initial break: brk(0), grow
; to an unaligned end, shrink, a request below the start (Linux returns the old break),
; brk(0) again, and back to the start. Writes to the last valid heap byte each time.
%macro BRK 1                ; brk(%1), then print rax - r12
    mov rdi, %1
    mov eax, 12
    syscall
    call emit
%endmacro
section .bss
    result resq 1
section .text
    global _start
_start:
    mov eax, 12
    xor edi, edi
    syscall
    mov r12, rax            ; the initial break
    lea rbx, [r12 + 3*4096 + 5]
    BRK rbx
    mov byte [r12 + 3*4096 + 4], 1
    lea rbx, [r12 + 4096 + 100]
    BRK rbx
    mov byte [r12 + 4096 + 99], 2
    lea rbx, [r12 - 4096]
    BRK rbx
    BRK 0
    BRK r12
    mov eax, 60
    xor edi, edi
    syscall

emit:
    sub rax, r12
    mov [result], rax
    mov eax, 1
    mov edi, 1
    lea rsi, [result]
    mov edx, 8
    syscall
    ret

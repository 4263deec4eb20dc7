; Calls with classic frames, pushes and a loop, no rep instructions and no syscall until
; the end: every step is one debugger stepi, so gdb can check each state we replay.
section .data
    counter dq 0

section .text
    global _start
sum3:                       ; rdi + rsi + rdx, with a frame and two locals
    push rbp
    mov rbp, rsp
    sub rsp, 16
    mov [rbp - 8], rdi
    lea rax, [rdi + rsi]
    add rax, rdx
    mov [rbp - 16], rax
    add [counter], rax
    leave
    ret

_start:
    mov rbx, 7
    push rbx
    push 0x1234
    mov rdi, 1
    mov rsi, 2
    mov rdx, 3
    call sum3
    mov rcx, 5
.loop:
    imul rbx, rbx, 3
    sub rbx, rcx
    push rbx                ; an argument pushed before the call
    mov rdi, rbx
    mov rsi, rcx
    mov rdx, [rsp]
    call sum3
    pop rdx
    dec rcx
    jnz .loop
    mov rdi, [counter]
    and rdi, 0x7f
    mov eax, 60
    syscall

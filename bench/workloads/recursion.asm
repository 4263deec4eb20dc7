; Call/ret recursion: naive fib(N), each call pushing a frame, saving a register and
; reading its argument back from the stack. Size: nasm -DN=n (calls grow as 1.618^n).
%ifndef N
%define N 20
%endif

section .bss
    result resq 1

section .text
    global _start
_start:
    mov rdi, N
    call fib
    mov [result], rax
    mov rax, 60
    xor rdi, rdi
    syscall

; fib(rdi) -> rax, with a frame pointer and one saved register
fib:
    push rbp
    mov rbp, rsp
    push rbx
    sub rsp, 8
    mov [rsp], rdi
    cmp rdi, 2
    jb .leaf
    dec rdi
    call fib
    mov rbx, rax
    mov rdi, [rsp]
    sub rdi, 2
    call fib
    add rax, rbx
    jmp .done
.leaf:
    mov rax, rdi
.done:
    add rsp, 8
    pop rbx
    pop rbp
    ret

; Recursive factorial with classic stack frames (push rbp / mov rbp, rsp / leave / ret).
; Each call of fact uses 32 bytes of stack: return address, saved rbp and a 16-byte local
; area, so 5 nested calls reach 160 bytes below the caller. Exit status = 5! = 120.
section .text
    global _start

fact:                       ; rdi = n, returns n! in rax
    push rbp
    mov rbp, rsp
    sub rsp, 16
    mov [rbp - 8], rdi      ; keep n in the frame
    cmp rdi, 1
    jbe .base
    dec rdi
    call fact
    imul rax, [rbp - 8]
    leave
    ret
.base:
    mov rax, 1
    leave
    ret

_start:
    mov rdi, 5
    call fact
    mov rdi, rax
    and rdi, 0xff
    mov rax, 60
    syscall

; Implicit stack accesses: push/pop of registers, immediates and memory operands (a push
; [mem] is an explicit read plus an implicit write), a 16-bit push, pushfq/popfq,
; call/ret, ret imm16, and enter/leave frames. Exit status = a value computed through them.
section .data
    cell dq 5
    slot dq 0
section .text
    global _start
_start:
    push 7
    push qword [cell]       ; read [cell], write to the stack
    pop qword [slot]        ; read the stack, write [slot]
    pop rax                 ; 7
    push ax                 ; 2-byte push (operand-size prefix)
    pop ax
    pushfq
    popfq
    push rax
    call framed             ; rax = 7 + [slot] = 12
    call callee_pops        ; pushes 8 bytes of argument, callee removes them with ret 8
    mov rdi, rax
    mov eax, 60
    syscall

framed:                     ; enter 16, 0 / leave around a local
    enter 16, 0
    mov rcx, [slot]
    mov [rbp - 8], rcx
    mov rax, [rbp + 16]     ; the pushed 7
    add rax, [rbp - 8]
    leave
    ret 8

callee_pops:
    pop rdx                 ; return address
    push 1                  ; an argument slot
    push rdx
    add rax, [rsp + 8]      ; 13
    ret 8

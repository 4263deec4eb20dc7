; Every way this program knows to move RSP: push/pop (64- and 16-bit), pushfq/popfq,
; call/ret (direct, through a register, ret imm16), enter (nesting level 0 and 1), leave,
; sub/add/and, lea, mov, xchg. tests/test_events.py compares each RSP change with gdb
; single-stepping the same binary. Exit status 0.
section .text
    global _start
_start:
    mov rbp, rsp
    push rbx
    push word 7
    pop ax
    pushfq
    popfq
    sub rsp, 24
    add rsp, 8
    and rsp, -16
    lea rsp, [rsp - 32]
    mov rsp, rbp
    mov rax, rsp
    sub rax, 64
    xchg rsp, rax           ; RSP = old - 64
    xchg rsp, rax           ; and back
    call plain
    lea rcx, [plain]
    call rcx
    push 5
    call pops_arg
    call nested
    mov eax, 60
    xor edi, edi
    syscall

plain:
    ret

pops_arg:                   ; ret 8 removes the pushed argument
    ret 8

nested:                     ; enter with nesting level 1 copies the frame pointer
    enter 16, 0
    enter 8, 1
    leave
    leave
    ret

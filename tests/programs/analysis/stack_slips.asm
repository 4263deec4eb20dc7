; Stack slips a teacher would point out: a call made with RSP 8 bytes off 16-byte
; alignment, a read of a stack slot never written, a write far below RSP, and a push
; left on the stack at exit.
section .text
    global _start
leaf:
    ret

_start:
    push rax                ; RSP now 8 off alignment
    call leaf               ; misaligned call
    sub rsp, 8              ; realigned; reserve a slot
    mov rbx, [rsp - 16]     ; read of a slot nobody wrote
    mov qword [rsp - 512], 7 ; write far below RSP (beyond the red zone)
    add rsp, 8              ; the pushed rax stays: unbalanced at exit
    mov rax, 60
    xor rdi, rdi
    syscall

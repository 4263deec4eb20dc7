; The kernel's access grows the stack too: uname() writes its 390-byte struct 256 KiB below
; RSP, below [stack], which Linux expands for the copy (no EFAULT); then RSP moves there and
; the program pushes. Exits with uname's result (0).
section .text
    global _start
_start:
    lea rdi, [rsp - 0x40000]
    mov eax, 63             ; uname(buf)
    syscall
    mov rbx, rax
    lea rsp, [rsp - 0x41000]
    push rbx
    pop rdi
    mov eax, 60
    syscall

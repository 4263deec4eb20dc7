; A store 1 MiB below RSP without moving RSP: Linux grows the stack to cover it (no RSP
; check since 4.20), so the store succeeds; then a load of it. Exit status = the value.
section .text
    global _start
_start:
    mov qword [rsp - 0x100000], 42
    mov rdi, [rsp - 0x100000]
    mov eax, 60
    syscall

; Jump into .data (rw-, not executable): with NX, Linux delivers SIGSEGV when the CPU
; fetches the first byte there. The bytes are a valid `ret`, so only permissions stop it.
section .data
code_in_data:
    db 0xC3                 ; ret
section .text
    global _start
_start:
    lea rax, [code_in_data]
fault:
    call rax
    mov rax, 60
    xor rdi, rdi
    syscall

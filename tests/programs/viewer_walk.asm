; For the viewer's tests: calls with frames, a counter written three times, output that
; looks like HTML (it must be shown as text), and the break moved once.
section .data
counter: dq 0
msg:     db "<img src=x onerror=alert(1)>", 10
msglen   equ $ - msg

section .text
global _start
bump:
    push rbp
    mov rbp, rsp
    inc qword [rel counter]
    pop rbp
    ret

_start:
    call bump               ; step 0
    call bump               ; step 6
    mov eax, 1              ; step 12: write(1, msg, msglen)
    mov edi, 1
    lea rsi, [rel msg]
    mov edx, msglen
    syscall                 ; step 16
    mov eax, 12             ; brk(0)
    xor edi, edi
    syscall                 ; step 19
    mov rdi, rax
    add rdi, 4096
    mov eax, 12             ; brk(start + 4096)
    syscall                 ; step 23
    call bump               ; step 24
    mov eax, 60
    xor edi, edi
    syscall                 ; step 32

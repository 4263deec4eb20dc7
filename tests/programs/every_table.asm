; Fills every table of a trace in a few dozen steps: a call and pushes (rsp), a read of
; stdin (kernel_writes, inputs), a write (output), brk (regions), loads and stores
; (accesses). The fuzz tests damage each of its files.
section .bss
    buf resb 16
section .text
    global _start
_start:
    call copy
    mov eax, 12             ; brk(0), then brk(+4096)
    xor edi, edi
    syscall
    lea rdi, [rax + 4096]
    mov eax, 12
    syscall
    mov byte [rdi - 1], 7
    mov eax, 60
    movzx edi, byte [buf]
    syscall
copy:
    push rbx
    xor eax, eax            ; read(0, buf, 16)
    xor edi, edi
    lea rsi, [buf]
    mov edx, 16
    syscall
    mov rdx, rax            ; write(1, buf, n)
    mov eax, 1
    mov edi, 1
    syscall
    pop rbx
    ret

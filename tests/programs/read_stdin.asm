; Echo standard input: read(0) 64 bytes at a time until end of file, writing each chunk
; back to stdout. Exit status = total bytes read (mod 256). The recording's stdin comes
; from `--stdin FILE`; natively it is a pipe holding the same bytes.
section .bss
    buf resb 64
section .text
    global _start
_start:
    xor r12, r12            ; total
.next:
    xor eax, eax            ; read(0, buf, 64)
    xor edi, edi
    lea rsi, [buf]
    mov edx, 64
    syscall
    test rax, rax
    jle .done
    add r12, rax
    mov rdx, rax            ; write(1, buf, n)
    mov eax, 1
    mov edi, 1
    lea rsi, [buf]
    syscall
    jmp .next
.done:
    mov rdi, r12
    and rdi, 0xff
    mov eax, 60
    syscall

; Syscall numbers with high bits set: Linux reads only the low 32 bits of RAX, sign-extended
; (entry_64.S: movslq %eax). -1 has no syscall (-ENOSYS), 0x100000000 is read (0), and
; 0xffffffff00000027 is getpid (39). Prints the read's and the -1's results as raw bytes.
section .bss
    buf resb 8
    result resq 1
section .text
    global _start
_start:
    mov rax, -1
    syscall
    call emit
    mov rax, 0x100000000    ; read(0, buf, 8): end of file without stdin
    xor edi, edi
    lea rsi, [buf]
    mov edx, 8
    syscall
    call emit
    mov rax, 0xffffffff00000027
    syscall
    xor r13d, r13d
    test rax, rax           ; a pid: positive (exit status 1)
    setg r13b
    mov rax, 0x7fffffff     ; no such syscall either
    syscall
    call emit
    mov edi, r13d
    mov eax, 60
    syscall

emit:
    mov [result], rax
    mov eax, 1
    mov edi, 1
    lea rsi, [result]
    mov edx, 8
    syscall
    ret

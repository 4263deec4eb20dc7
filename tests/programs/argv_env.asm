; Prints argc (as one digit), then every argv string and every environment string, one per
; line, walking the initial stack the way a C runtime does: [rsp] = argc, then argv[],
; NULL, envp[], NULL. Exit status = argc.
section .bss
    digit resb 2
section .text
    global _start
_start:
    mov r12, [rsp]          ; argc
    lea r13, [rsp + 8]      ; argv
    mov al, r12b
    add al, '0'
    mov [digit], al
    mov byte [digit + 1], 10
    mov eax, 1
    mov edi, 1
    lea rsi, [digit]
    mov edx, 2
    syscall
.strings:                   ; argv strings, then (after the NULL) the environment
    mov rsi, [r13]
    add r13, 8
    test rsi, rsi
    jnz .print
    cmp r14, 1              ; second NULL: end of envp
    je .done
    mov r14, 1
    jmp .strings
.print:
    call puts
    jmp .strings
.done:
    mov rdi, r12
    mov eax, 60
    syscall

puts:                       ; rsi = NUL-terminated string; writes it and a newline
    mov rdx, rsi
.len:
    cmp byte [rdx], 0
    je .write
    inc rdx
    jmp .len
.write:
    mov byte [rdx], 10      ; borrow the terminator for the newline, then restore it
    sub rdx, rsi
    inc rdx
    push rdx
    push rsi
    mov eax, 1
    mov edi, 1
    syscall
    pop rsi
    pop rdx
    mov byte [rsi + rdx - 1], 0
    ret

; Registers across a syscall, as Linux leaves them: RAX = result, RCX = the address after
; the `syscall` instruction, R11 = RFLAGS, every other register preserved. Prints one
; letter per check that holds ("crp"); exit status = number of checks that failed.
section .data
    letter db "?"
section .text
    global _start
_start:
    xor r15, r15
    mov rdi, 11
    mov rsi, 22
    mov rdx, 33
    mov r8, 44
    mov r9, 55
    mov r10, 66
    mov rbx, 77
    mov r12, 88
    stc                     ; a flag pattern to find in R11 (CF set, IF set by Linux)
    pushfq
    pop r14
    mov eax, 39             ; getpid: no argument, touches no memory
    syscall
after:
    lea rax, [after]
    cmp rcx, rax
    sete r13b
    mov cl, 'c'
    call check
    mov rax, r11            ; R11 = RFLAGS at the syscall (RF cleared; IF, CF as set)
    xor rax, r14
    and rax, 0x8d5          ; compare CF, PF, AF, ZF, SF, OF
    setz r13b
    mov cl, 'r'
    call check
    xor eax, eax
    cmp rdi, 11
    setne al
    add r13, rax
    cmp rsi, 22
    setne al
    add r13, rax
    cmp rdx, 33
    setne al
    add r13, rax
    cmp r8, 44
    setne al
    add r13, rax
    cmp r9, 55
    setne al
    add r13, rax
    cmp r10, 66
    setne al
    add r13, rax
    cmp rbx, 77
    setne al
    add r13, rax
    cmp r12, 88
    setne al
    add r13, rax
    test r13, r13
    setz r13b
    mov cl, 'p'
    call check
    mov rdi, r15
    mov eax, 60
    syscall

check:                      ; r13b = 1 if the check held; prints cl, else counts a failure
    test r13b, r13b
    jnz .ok
    inc r15
    mov cl, '!'
.ok:
    mov [letter], cl
    xor r13, r13
    push rdi
    push rsi
    push rdx
    push r11
    mov eax, 1
    mov edi, 1
    lea rsi, [letter]
    mov edx, 1
    syscall
    pop r11
    pop rdx
    pop rsi
    pop rdi
    ret

; open() of an allowed host file with flags that would write it: O_RDONLY|O_TRUNC, O_WRONLY,
; O_RDWR, O_CREAT (the file exists), O_CREAT|O_EXCL, then O_CREAT|O_WRONLY of argv[2], a
; missing file. vmtrace answers as a read-only mount would, and the host file is untouched.
; Prints each result as 8 raw bytes.
section .bss
    result resq 1
section .text
    global _start
_start:
    mov r12, [rsp + 16]     ; argv[1]: an existing file
    mov r13, [rsp + 24]     ; argv[2]: a missing one
    mov rdi, r12
    mov esi, 0o1000         ; O_RDONLY | O_TRUNC
    call open
    mov rdi, r12
    mov esi, 1              ; O_WRONLY
    call open
    mov rdi, r12
    mov esi, 2              ; O_RDWR
    call open
    mov rdi, r12
    mov esi, 0o100          ; O_CREAT (opens the existing file read-only)
    call open
    mov rdi, r12
    mov esi, 0o300          ; O_CREAT | O_EXCL
    call open
    mov rdi, r13
    mov esi, 0o101          ; O_CREAT | O_WRONLY
    call open
    mov eax, 60
    xor edi, edi
    syscall

open:                       ; open(rdi, esi, 0644) and print the result
    mov edx, 0o644
    mov eax, 2
    syscall
    mov [result], rax
    mov eax, 1
    mov edi, 1
    lea rsi, [result]
    mov edx, 8
    syscall
    ret

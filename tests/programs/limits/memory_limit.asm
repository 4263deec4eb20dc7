; Maps 64 MiB at a time and touches one byte per page until mmap fails, then asks brk for
; 64 MiB more. Under a memory limit (`ulimit -v`, vmtrace's --max-memory) mmap fails with
; ENOMEM and brk returns the old break. Prints the failing mmap's result and how far the
; break moved as 8 raw bytes each; the exit status is the number of mmaps that succeeded.
section .bss
    result resq 1
section .text
    global _start
_start:
    xor r12d, r12d          ; mappings made
.map:
    mov eax, 9              ; mmap(NULL, 64 MiB, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    xor edi, edi
    mov esi, 64 << 20
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    syscall
    cmp rax, -4096
    ja .failed
    inc r12
    mov ecx, (64 << 20) / 4096
.touch:
    mov byte [rax], 1
    add rax, 4096
    dec ecx
    jnz .touch
    jmp .map
.failed:
    call emit
    mov eax, 12             ; brk(0)
    xor edi, edi
    syscall
    mov r13, rax
    lea rdi, [rax + (64 << 20)]
    mov eax, 12             ; brk(break + 64 MiB)
    syscall
    sub rax, r13
    call emit
    mov eax, 60
    mov rdi, r12
    syscall

emit:
    mov [result], rax
    mov eax, 1
    mov edi, 1
    lea rsi, [result]
    mov edx, 8
    syscall
    ret

; mmap/munmap/mprotect results, each printed as 8 raw bytes (addresses relative to the
; initial break): placement with no hint, a free hint, an unaligned hint, a taken hint,
; MAP_FIXED, a partial munmap that splits a region, mprotect of part of a region and of a
; hole (-ENOMEM), and the -EINVAL cases (no MAP_PRIVATE/SHARED, length 0, unaligned munmap).
%define RW 3
%define PRIV_ANON 0x22
%define FIXED 0x10
%macro MMAP 4               ; mmap(%1, %2, %3, %4, -1, 0)
    mov rdi, %1
    mov rsi, %2
    mov edx, %3
    mov r10d, %4
    mov r8, -1
    xor r9d, r9d
    mov eax, 9
    syscall
%endmacro
%macro SYS3 4               ; syscall %1(%2, %3, %4), result printed raw
    mov rdi, %2
    mov rsi, %3
    mov edx, %4
    mov eax, %1
    syscall
    call emit
%endmacro
section .bss
    result resq 1
section .text
    global _start
_start:
    mov eax, 12
    xor edi, edi
    syscall
    mov r12, rax                            ; the initial break

    MMAP 0, 8192, RW, PRIV_ANON             ; A: below mmap_base
    mov r13, rax
    call emit_addr
    mov qword [r13 + 8184], 1
    MMAP 0x10000000, 4096, RW, PRIV_ANON    ; a free hint is honoured
    call emit_addr
    MMAP 0x30000123, 4096, RW, PRIV_ANON    ; an unaligned hint is rounded down
    call emit_addr
    MMAP 0x20000000, 3*4096, RW, PRIV_ANON | FIXED
    call emit_addr
    mov qword [0x20000000], 1
    mov qword [0x20001000], 2
    mov qword [0x20002000], 3
    MMAP 0x20000000, 4096, RW, PRIV_ANON    ; a taken hint: placed top-down instead
    call emit_addr
    SYS3 11, 0x20001000, 4096, 0            ; munmap the middle page: 0
    SYS3 10, 0x20002000, 4096, 1            ; mprotect(PROT_READ) the last page: 0
    mov rax, [0x20002000]
    SYS3 10, 0x20001000, 4096, 1            ; mprotect of the hole: -ENOMEM
    SYS3 10, 0x20000000, 3*4096, 1          ; a range with a hole in it: -ENOMEM
    MMAP 0, 4096, RW, 0x20                  ; neither MAP_PRIVATE nor MAP_SHARED: -EINVAL
    call emit
    MMAP 0, 0, RW, PRIV_ANON                ; length 0: -EINVAL
    call emit
    SYS3 11, 0x20000001, 4096, 0            ; munmap of an unaligned address: -EINVAL
    SYS3 11, r13, 8192, 0                   ; munmap A: 0
    MMAP 0, 4096, RW, PRIV_ANON             ; reuses the top of the freed gap
    call emit_addr
    mov eax, 60
    xor edi, edi
    syscall

emit_addr:
    sub rax, r12
emit:
    mov [result], rax
    mov eax, 1
    mov edi, 1
    lea rsi, [result]
    mov edx, 8
    syscall
    ret

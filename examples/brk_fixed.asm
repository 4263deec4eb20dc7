; The tutorial's brk example, fixed: the increment is a quadword (dq), so the 8-byte add
; reads exactly the datum, and the heap grows by one page, then by three more, and the
; program writes to every new page to show the memory is really there.
section .data
    increment dq 0x1000

section .text
    global _start

_start:
    mov rax, 12             ; brk(0): where does the heap start?
    xor rdi, rdi
    syscall
    mov r12, rax            ; r12 = initial break

    mov rbx, rax
    add rbx, [increment]    ; + 4096
    mov rax, 12
    mov rdi, rbx
    syscall                 ; brk(start + 4096) -> start + 4096
    mov qword [r12], 1      ; touch the first heap page

    lea rdi, [r12 + 4*4096]
    mov rax, 12
    syscall                 ; grow to four pages
    mov rcx, 1
.touch:                     ; write one qword in each new page
    mov rdx, rcx
    shl rdx, 12
    mov [r12 + rdx], rcx
    inc rcx
    cmp rcx, 4
    jne .touch

    mov rdi, r12            ; shrink back to the start
    mov rax, 12
    syscall

    mov rax, 60
    xor rdi, rdi
    syscall

; Read-modify-write instructions on memory: xchg (implicitly locked), cmpxchg that succeeds
; and one that fails (it still writes the old value back, architecturally), lock add,
; lock xadd, lock inc, and add [mem] without lock. Each is one read and one write of the
; operand size. Prints the four qwords.
section .data
    a dq 1
    b dq 2
    c dq 3
    d dq 4
section .text
    global _start
_start:
    mov rax, 10
    xchg [a], rax           ; a = 10, rax = 1
    mov rcx, 20
    cmpxchg [a], rcx        ; rax (1) != a (10): rax = 10, a unchanged
    cmpxchg [a], rcx        ; rax (10) == a: a = 20
    lock add qword [b], 5   ; b = 7
    mov rdx, 100
    lock xadd [c], rdx      ; c = 103, rdx = 3
    lock inc qword [d]      ; d = 5
    add dword [d], 1        ; d = 6
    mov eax, 1
    mov edi, 1
    lea rsi, [a]
    mov edx, 32
    syscall
    mov eax, 60
    xor edi, edi
    syscall

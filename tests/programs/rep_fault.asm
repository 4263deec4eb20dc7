; rep movsb that runs off the end of a mapping: two pages are mapped and the second one
; unmapped again, then the copy proceeds byte by byte into the last 10 bytes of the first
; page and the 11th store hits the hole. Linux delivers SIGSEGV there with RCX, RSI, RDI
; showing the 10 completed iterations.
section .data
    src db "0123456789abcdefghij"
section .text
    global _start
_start:
    xor edi, edi            ; mmap(NULL, 8192, RW, PRIVATE|ANONYMOUS)
    mov esi, 8192
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    mov eax, 9
    syscall
    mov rbx, rax
    lea rdi, [rbx + 4096]   ; munmap the second page
    mov esi, 4096
    mov eax, 11
    syscall
    lea rdi, [rbx + 4096 - 10]
    lea rsi, [src]
    mov ecx, 20
    cld
fault:
    rep movsb
    mov eax, 60
    xor edi, edi
    syscall

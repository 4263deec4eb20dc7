; rep movsb that runs off the end of a mapping: the copy proceeds byte by byte into the
; last 10 bytes of an mmap'd page, and the 11th store hits the unmapped page after it.
; Linux delivers SIGSEGV there with RCX, RSI, RDI showing the 10 completed iterations.
section .data
    src db "0123456789abcdefghij"
section .text
    global _start
_start:
    xor edi, edi            ; mmap(NULL, 4096, RW, PRIVATE|ANONYMOUS)
    mov esi, 4096
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    mov eax, 9
    syscall
    lea rdi, [rax + 4096 - 10]
    lea rsi, [src]
    mov ecx, 20
    cld
fault:
    rep movsb
    mov eax, 60
    xor edi, edi
    syscall

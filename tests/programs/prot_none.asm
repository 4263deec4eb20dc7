; A PROT_NONE mapping is mapped but not readable: the load at `fault` gets SIGSEGV.
section .text
    global _start
_start:
    xor edi, edi            ; mmap(NULL, 4096, PROT_NONE, PRIVATE|ANONYMOUS)
    mov esi, 4096
    xor edx, edx
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    mov eax, 9
    syscall
fault:
    mov rbx, [rax]
    mov eax, 60
    xor edi, edi
    syscall

; Dumps the initial process stack: 8 bytes holding the entry RSP, then every byte from RSP
; up to the stack top (0x7ffffffff000). tests/test_loader.py parses the dump taken natively
; and the one taken in the emulator (argc, argv, envp, auxv, strings, AT_RANDOM) and
; compares them field by field.
section .bss
    entry_rsp resq 1
section .text
    global _start
_start:
    mov [entry_rsp], rsp
    mov eax, 1
    mov edi, 1
    lea rsi, [entry_rsp]
    mov edx, 8
    syscall
    mov eax, 1
    mov edi, 1
    mov rsi, rsp
    mov rdx, 0x7ffffffff000
    sub rdx, rsp
    syscall
    mov eax, 60
    xor edi, edi
    syscall

; 8F with a reg field other than 0 is AMD's XOP prefix, which current CPUs lack: #UD,
; SIGILL (found by the instruction fuzz test: Unicorn ran it as a store).
section .text
    global _start
_start:
    nop
fault:
    db 0x8f, 0xa8, 0x96, 0x70, 0x03, 0x79
    mov eax, 60
    xor edi, edi
    syscall

; exit_group(300): the status is truncated to 8 bits (300 & 0xff = 44), as wait(2) sees it.
section .text
    global _start
_start:
    mov edi, 300
    mov eax, 231
    syscall

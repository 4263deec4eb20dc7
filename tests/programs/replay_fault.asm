; Ends by a fault, not an exit: the replay must end the same way (step, RIP).
section .text
global _start
_start:
    push 1
    mov rbx, 0
    mov rcx, [rbx]          ; SIGSEGV: read of address 0

; Never ends: calls getpid forever, so that the recorder spends its time in the Python
; syscall layer when a signal arrives (Ctrl-C while a syscall is being emulated).
section .text
    global _start
_start:
.again:
    mov eax, 39
    syscall
    jmp .again

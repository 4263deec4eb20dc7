; Never ends: stores a counter to memory forever. For --max-steps, --max-trace-mb and for
; killing a recording in progress (not run natively: it would not stop).
section .bss
    counter resq 1
section .text
    global _start
_start:
    xor rcx, rcx
.again:
    inc rcx
    mov [counter], rcx
    jmp .again

; Prints /proc/self/maps as the process starts (run natively: vmtrace gives the program no
; host file). tests/test_stack_region.py compares its [stack] line with the trace's.
section .data
    path db "/proc/self/maps", 0
section .bss
    buf resb 16384
section .text
    global _start
_start:
    mov eax, 2              ; open(path, O_RDONLY)
    lea rdi, [path]
    xor esi, esi
    syscall
    mov edi, eax            ; read(fd, buf, 16384)
    xor eax, eax
    lea rsi, [buf]
    mov edx, 16384
    syscall
    mov edx, eax            ; write(1, buf, n)
    mov eax, 1
    mov edi, 1
    lea rsi, [buf]
    syscall
    mov eax, 60
    xor edi, edi
    syscall

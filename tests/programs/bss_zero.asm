; .bss is zero and so is the rest of .data's last page (memsz > filesz: Linux zeroes the
; file page's tail before the anonymous .bss pages). Prints the page holding the end of
; .data and the whole .bss (two pages and a bit).
extern _edata, _end
section .data
    greeting db "data then bss", 10
section .bss
    big resb 8192 + 100
section .text
    global _start
_start:
    mov rsi, _edata
    and rsi, -4096
    mov rdx, _end
    sub rdx, rsi
    mov eax, 1
    mov edi, 1
    syscall
    mov eax, 60
    xor edi, edi
    syscall

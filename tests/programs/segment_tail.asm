; Bytes past a segment's end: .data has no .bss after it, so Linux maps its last file page
; whole and what follows .data in the file (symbol table, strings, debug info) is readable
; in memory up to the page end. Prints that page (from the page start to the page end).
extern _edata
section .data
    greeting db "data segment", 10
section .text
    global _start
_start:
    mov rsi, _edata
    and rsi, -4096
    mov eax, 1
    mov edi, 1
    mov edx, 4096
    syscall
    mov eax, 60
    xor edi, edi
    syscall

; Writes terminal control sequences and Rich markup: `trace info` must show them escaped.
; OSC 0 (window title), OSC 52 (clipboard), CSI 2J (clear screen), C1 CSI (U+009B), a
; carriage return that would hide what came before it, and markup.
section .data
    msg db "title:", 27, "]0;pwned", 7, " clip:", 27, "]52;c;aGVsbG8=", 7
        db " clear:", 27, "[2J", " c1:", 0xc2, 0x9b, "31m", " markup:[red]red[/red]"
        db " cr:hidden", 13, "shown", 10
    len equ $ - msg
section .text
    global _start
_start:
    mov eax, 1
    mov edi, 1
    lea rsi, [msg]
    mov edx, len
    syscall
    mov eax, 60
    xor edi, edi
    syscall

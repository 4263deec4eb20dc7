; Touches the stack 192 KiB below RSP (a page fault below [stack]: Linux grows it, however
; far below RSP since Linux 4.20), then 1 MiB below, then prints /proc/self/maps (natively).
section .data
    path db "/proc/self/maps", 0
section .bss
    buf resb 16384
section .text
    global _start
_start:
    mov byte [rsp - 0x30000], 1
    nop
    mov qword [rsp - 0x100000], 2
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

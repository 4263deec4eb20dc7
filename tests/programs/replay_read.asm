; Reads up to 32 bytes of stdin, keeps the count, sums the bytes one by one and writes the
; sum's low byte as the exit status: the kernel's bytes flow into later CPU reads.
section .bss
    buf resb 32
    count resq 1
    total resq 1

section .text
    global _start
_start:
    xor eax, eax            ; read(0, buf, 32)
    xor edi, edi
    lea rsi, [buf]
    mov edx, 32
    syscall
    mov [count], rax
    xor ebx, ebx
    xor ecx, ecx
.sum:
    cmp rcx, [count]
    jae .done
    movzx edx, byte [buf + rcx]
    add rbx, rdx
    inc rcx
    jmp .sum
.done:
    mov [total], rbx
    mov eax, 1              ; write(1, buf, count)
    mov edi, 1
    lea rsi, [buf]
    mov rdx, [count]
    syscall
    mov rdi, [total]
    and edi, 0xff
    mov eax, 60
    syscall

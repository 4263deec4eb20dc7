; String instructions, one access per iteration: rep movsb/movsq, rep stosb/stosq,
; repe cmpsb (stops at the first difference), repne scasb, lodsb/lodsq, a rep with rcx = 0
; (no access), and a backwards rep movsb (std). Prints the destination buffer.
section .data
    src db "abcdefghijklmnop", 10
    other db "abcdXfghijklmnop", 10
section .bss
    dst resb 64
    wide resq 4
section .text
    global _start
_start:
    cld
    lea rsi, [src]
    lea rdi, [dst]
    mov ecx, 17
    rep movsb               ; 17 reads + 17 writes
    lea rsi, [src]
    lea rdi, [wide]
    mov ecx, 2
    rep movsq               ; 2 qword reads + writes
    lea rdi, [wide + 16]
    mov eax, 0x41
    mov ecx, 3
    rep stosb
    mov rax, -1
    mov ecx, 1
    rep stosq
    lea rsi, [src]
    lea rdi, [other]
    mov ecx, 17
    repe cmpsb              ; stops after 5 iterations (at the X)
    lea rdi, [src]
    mov al, 'h'
    mov ecx, 17
    repne scasb             ; 8 iterations
    lea rsi, [src]
    lodsb
    lodsq
    xor ecx, ecx
    rep movsb               ; count 0: nothing happens
    std                     ; copy "ponm" backwards into dst+20..23
    lea rsi, [src + 15]
    lea rdi, [dst + 23]
    mov ecx, 4
    rep movsb
    cld
    mov eax, 1
    mov edi, 1
    lea rsi, [dst]
    mov edx, 24
    syscall
    mov eax, 60
    xor edi, edi
    syscall

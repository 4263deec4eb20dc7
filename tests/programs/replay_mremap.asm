; mremap moves a filled page (growing it where the vDSO's reserved addresses leave no room):
; the kernel copies the bytes, no write records them, and memory at a later step must still
; show them at the new address. Then one byte is written there.
section .text
    global _start
_start:
    mov eax, 9              ; mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    xor edi, edi
    mov esi, 4096
    mov edx, 3
    mov r10d, 0x22
    mov r8, -1
    xor r9d, r9d
    syscall
    mov rbx, rax
    mov rdi, rbx            ; fill it with 0x5a
    mov ecx, 4096
    mov al, 0x5a
    rep stosb
    mov eax, 25             ; mremap(old, 4096, 3*4096, MREMAP_MAYMOVE)
    mov rdi, rbx
    mov esi, 4096
    mov edx, 3*4096
    mov r10d, 1
    syscall
    mov byte [rax + 7], 0x11
    mov rdi, rax
    mov eax, 60
    xor edi, edi
    syscall

; socket(AF_UNIX, SOCK_STREAM, 0), then connect() to the path in argv[1]. The exit status is
; connect's -errno (0 if it connected): no host socket is reachable from the emulated
; process, so vmtrace answers ECONNREFUSED (111) for an allowed socket, as Linux does when
; nobody listens on it.
section .bss
    addr resb 110
section .text
    global _start
_start:
    mov eax, 41             ; socket(AF_UNIX, SOCK_STREAM, 0)
    mov edi, 1
    mov esi, 1
    xor edx, edx
    syscall
    mov r12, rax
    mov word [addr], 1      ; sun_family = AF_UNIX
    mov rsi, [rsp + 16]     ; copy argv[1] into sun_path
    lea rdi, [addr + 2]
    mov ecx, 107
.copy:
    mov al, [rsi]
    mov [rdi], al
    test al, al
    jz .copied
    inc rsi
    inc rdi
    dec ecx
    jnz .copy
.copied:
    mov eax, 42             ; connect(fd, &addr, sizeof addr)
    mov rdi, r12
    lea rsi, [addr]
    mov edx, 110
    syscall
    neg rax
    mov rdi, rax
    mov eax, 60
    syscall

; A load through RSP at a non-canonical address (bit 47 set, bits 63-48 clear) raises a
; stack-segment fault (#SS), which Linux delivers as SIGBUS; Unicorn reports an unmapped
; address. The same address through another base register is #GP (noncanonical_data.asm).
section .text
    global _start
_start:
    mov rbx, 0x800000000000
fault:
    mov rax, [rsp + rbx]
    mov eax, 60
    xor edi, edi
    syscall

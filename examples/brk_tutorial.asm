; The `brk` example from "Virtual Memory In Assembly", exactly as the tutorial prints it.
; Record it and look closely: `increment db 0x1000` does not fit in a byte (nasm warns and
; stores 0x00), and `add rbx, [increment]` reads 8 bytes starting at a 1-byte datum: the
; other 7 come from whatever follows .data in its page. The break never moves.
    section .data
        increment db 0x1000     ; Increase heap by 4096 bytes (one page size)
    
    section .text
        global _start

    _start:
        ; Step 1: Get the current program break (heap end)
        mov rax, 12            ; sys_brk syscall number (12)
        xor rdi, rdi           ; rdi = 0 to get the current program break
        syscall

        ; Step 2: Store the current break address
        mov rbx, rax           ; Save the current program break in rbx

        ; Step 3: Add the increment to the current break to increase the heap
        add rbx, [increment]   ; Add 4096 bytes to the current break

        ; Step 4: Set the new program break
        mov rax, 12            ; sys_brk syscall number (12)
        mov rdi, rbx           ; rdi = new break address
        syscall                ; invoking the ssycall

        ; Step 5: Exit the program
        mov rax, 60            ; sys_exit syscall number (60)
        xor rdi, rdi           ; Exit code 0
        syscall

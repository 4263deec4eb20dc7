; Stack overflow by unbounded recursion: each call takes a 1 KiB frame and stores into it,
; so the stack grows page by page until it passes the 8 MiB RLIMIT_STACK. Linux kills the
; process with SIGSEGV; the recording must end with the same signal and an overflow cause.
section .text
    global _start
_start:
    xor rbx, rbx
recurse:
    sub rsp, 1016
    mov [rsp], rbx          ; touch the new frame (a store below the old stack end)
    inc rbx
    call recurse

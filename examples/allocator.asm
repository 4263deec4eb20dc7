; A tiny brk-based allocator: `alloc` (size in rdi, pointer in rax) takes the first free
; hole big enough, else bumps the top of the heap (growing the break with brk); `free`
; (pointer in rdi) turns the block into a hole. Block sizes live in a side table, not in
; headers, so the heap holds only the blocks. No coalescing: watch fragmentation appear.
;   trace record examples/allocator.asm
;   trace report traces/allocator --allocator alloc=alloc,free=free
section .bss
    heap_top   resq 1           ; next never-used byte (0: not set up yet)
    heap_end   resq 1           ; the program break
    blocks     resq 2*32        ; (ptr, size) of each live block; ptr 0 = empty slot
    holes      resq 2*32        ; (addr, size) of each free hole
    nholes     resq 1

section .text
    global _start, alloc, free

alloc:                          ; rdi = size -> rax = pointer
    xor rcx, rcx                ; first fit among the holes
.scan:
    cmp rcx, [nholes]
    je .bump
    mov rax, rcx
    shl rax, 4
    cmp [holes + rax + 8], rdi
    jae .from_hole
    inc rcx
    jmp .scan
.from_hole:
    mov rdx, [holes + rax]      ; the block starts at the hole's start
    add [holes + rax], rdi      ; the hole shrinks from below
    sub [holes + rax + 8], rdi
    mov rax, rdx
    jmp .record
.bump:
    mov rax, [heap_top]
    test rax, rax
    jnz .have_heap
    push rdi
    mov rax, 12                 ; brk(0): the heap starts at the initial break
    xor rdi, rdi
    syscall
    pop rdi
    mov [heap_top], rax
    mov [heap_end], rax
.have_heap:
    lea rdx, [rax + rdi]        ; new top
    cmp rdx, [heap_end]
    jbe .bumped
    push rax
    push rdi
    lea rdi, [rdx + 4095]       ; grow the break a page beyond the new top
    mov rax, 12
    syscall
    mov [heap_end], rax
    pop rdi
    pop rax
    lea rdx, [rax + rdi]
.bumped:
    mov [heap_top], rdx
.record:                        ; remember (rax, rdi) in a free slot of blocks
    xor rcx, rcx
.slot:
    mov rdx, rcx
    shl rdx, 4
    cmp qword [blocks + rdx], 0
    je .put
    inc rcx
    jmp .slot
.put:
    mov [blocks + rdx], rax
    mov [blocks + rdx + 8], rdi
    ret

free:                           ; rdi = pointer
    xor rcx, rcx
.find:
    mov rdx, rcx
    shl rdx, 4
    cmp [blocks + rdx], rdi
    je .found
    inc rcx
    cmp rcx, 32
    jne .find
    ret                         ; not ours: ignore
.found:
    mov rsi, [blocks + rdx + 8]
    mov qword [blocks + rdx], 0
    mov rax, [nholes]           ; append the hole (addr, size)
    shl rax, 4
    mov [holes + rax], rdi
    mov [holes + rax + 8], rsi
    inc qword [nholes]
    ret

_start:
    mov rdi, 32
    call alloc
    mov r12, rax                ; A: 32 bytes
    mov rdi, 64
    call alloc                  ; B: 64 bytes
    mov rdi, 32
    call alloc
    mov r13, rax                ; C: 32 bytes
    mov rdi, 32
    call alloc                  ; D: 32 bytes
    mov rdi, r12
    call free                   ; free A: a 32-byte hole at the start
    mov rdi, r13
    call free                   ; free C: a second 32-byte hole
    mov rdi, 16
    call alloc                  ; E: 16 bytes, first fit into A's hole
    mov rdi, 48
    call alloc                  ; F: 48 bytes fit no hole: bumped on top
    mov rax, 60
    xor rdi, rdi
    syscall

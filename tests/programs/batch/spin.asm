; Never ends and touches no memory: only a time limit (or --max-steps) stops it.
section .text
    global _start
_start:
    jmp _start

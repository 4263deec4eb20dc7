; Ends before a privileged instruction (#GP in user mode): the native hooks stop there.
section .text
global _start
_start:
    push 1
    hlt

"""Record side of vmtrace: assemble, load, emulate and record a program into a trace.

Kept light on purpose: importing `tracer` loads neither unicorn nor pandas; submodules do.
"""

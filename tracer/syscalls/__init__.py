"""The emulated Linux syscall layer: numbers, ABI, handlers by topic, one registry."""

"""Linux errno values used by the syscall layer (fixed by the x86-64 ABI, not the host)."""

EPERM = 1
ENOENT = 2
EBADF = 9
ENOMEM = 12
EACCES = 13
EFAULT = 14
EEXIST = 17
EISDIR = 21
EINVAL = 22
EMFILE = 24
ESPIPE = 29
ENOSYS = 38
EOVERFLOW = 75
EOPNOTSUPP = 95
ENODEV = 19

"""The sentry: the process inside the sandbox that runs the application.

The sentry is PID 1 of the sandbox's PID namespace. It starts the application
as ptrace-traced children and loads a seccomp filter into them. The kernel then
runs harmless system calls directly and fails every denied call with an errno.
At each call the policy mediates, the tracee stops for the sentry.

- ``syscalls``: the x86-64 system call table with argument kinds for decoding.
- ``policy``: the class of each system call and the overrides from the config.
- ``seccomp_filter``: the BPF filters built from a policy with libseccomp.
- ``ptrace_raw``: ctypes bindings for ptrace(2) and tracee memory access.
"""

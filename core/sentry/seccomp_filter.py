"""Seccomp BPF filters for the application and for the sentry, built with libseccomp.

The application's filter turns a Policy into kernel actions:

- passthrough: SECCOMP_RET_ALLOW.
- mediated: SECCOMP_RET_TRACE with the call's number as its data, a
  PTRACE_EVENT_SECCOMP stop for the sentry, which reads the number with one
  PTRACE_GETEVENTMSG instead of fetching all the registers. Without a tracer attached the kernel fails the call with ENOSYS,
  so a tracee that escapes tracing cannot run mediated calls.
- denied: SECCOMP_RET_ERRNO with the rule's errno, without a stop.
- notified: SECCOMP_RET_USER_NOTIF for the numbers the caller passes, which
  the sentry handles from a listener: the gofer mode's path calls, and
  mediated calls that nothing decides.
- any number in no row: SECCOMP_RET_ERRNO(ENOSYS).

Only native x86-64 calls are judged. The filter adds no other architecture, so
an i386 call through ``int 0x80`` (AUDIT_ARCH_I386) takes the bad-architecture
action, which is set to KILL_PROCESS; libseccomp's own default kills only the
thread. An x32 call carries AUDIT_ARCH_X86_64 with bit 30 set in its number.
libseccomp emits a check that sends every number at or above 0x40000000,
except -1, to the same bad-architecture action. tests/test_seccomp_filter.py
inspects the BPF and runs both kinds of call in a filtered child.

The sentry must not trust the data of a TRACE stop: when the application
installs filters of its own and one of them also returns TRACE, the kernel
reports the data of the most recently installed filter. The sentry looks the
system call number up in the Policy again instead.

The module uses pyseccomp, a ctypes binding to the system's libseccomp, which
must be version 2.5 or newer for the x32 check and KILL_PROCESS.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable

import pyseccomp as seccomp

from .. import linux
from . import syscalls
from .policy import UNKNOWN_SYSCALL_ERRNO, Condition, Policy, Rule, SyscallClass

BAD_ARCH_ACTION = seccomp.KILL_PROCESS

# The system calls a running CPython tracer loop makes: those of the interpreter
# itself (memory, signals, threads, lazy imports), ptrace and wait, tracee
# memory access, and I/O on the sockets and pipes it already has open.
SENTRY_SYSCALLS = (
    # I/O on open descriptors.
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close",
    "close_range", "lseek", "fstat", "fcntl", "ioctl", "dup", "dup2", "dup3",
    "pipe2", "poll", "ppoll", "select", "pselect6", "epoll_create1",
    "epoll_ctl", "epoll_wait", "epoll_pwait", "eventfd2", "getdents64",
    # Files: CPython imports modules lazily and the sentry reads /proc.
    "openat", "newfstatat", "statx", "readlink", "readlinkat", "access",
    "faccessat2", "getcwd", "renameat", "renameat2", "fsync",
    # Memory.
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk",
    # Signals.
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack",
    "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal",
    # Threads and the process itself.
    "clone", "clone3", "futex", "set_robust_list", "set_tid_address", "rseq",
    "exit", "exit_group", "getpid", "gettid", "getppid", "getuid", "geteuid",
    "getgid", "getegid", "prctl", "arch_prctl", "getrandom", "sched_yield",
    "sched_getaffinity", "getrlimit", "prlimit64", "sysinfo", "uname",
    "restart_syscall",
    # Time.
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
    "gettimeofday",
    # Tracing.
    "ptrace", "wait4", "waitid", "process_vm_readv", "process_vm_writev",
    # The path layer of a gofer sandbox: descriptors taken from the
    # application, and program copies in the sandbox's tmpfs.
    "pidfd_getfd", "sendfile", "fchmod", "mkdir", "mkdirat", "rename", "link",
    "unlinkat",
    "linkat",
    "statfs", "fstatfs",
    # Sockets the sentry already holds.
    "recvfrom", "recvmsg", "sendto", "sendmsg", "accept4", "shutdown",
    "getsockopt", "setsockopt", "getsockname", "getpeername",
)  # fmt: skip


# The gofer's calls: file operations relative to descriptors it holds, taking
# on a caller's ids, and I/O on its one socket.
GOFER_SYSCALLS = (
    "read", "write", "close", "recvmsg", "sendmsg", "recvfrom", "sendto",
    "openat", "openat2", "newfstatat", "fstat", "statx", "fstatfs",
    "faccessat2", "readlinkat", "mkdirat", "mknodat", "unlinkat", "renameat2",
    "linkat", "symlinkat", "fchmodat2", "fchownat", "utimensat", "ftruncate",
    "fchdir", "getcwd", "fcntl", "dup", "lseek",
    "getxattr", "lgetxattr", "setxattr", "lsetxattr", "listxattr",
    "llistxattr", "removexattr", "lremovexattr", "inotify_add_watch",
    "bind", "connect",
    "setfsuid", "setfsgid", "setgroups", "capget", "capset", "umask",
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
    "futex", "getpid", "gettid", "getrandom", "clock_gettime",
    "exit", "exit_group",
)  # fmt: skip


def build_filter(policy: Policy, notify: Iterable[int] = ()) -> seccomp.SyscallFilter:
    """Build the application's filter from POLICY; see the module docstring.

    Calls in NOTIFY that the policy does not deny go to the sentry as user
    notifications instead (the gofer mode's path-based calls).
    """
    _require_x86_64()
    filt = seccomp.SyscallFilter(seccomp.ERRNO(UNKNOWN_SYSCALL_ERRNO))
    filt.set_attr(seccomp.Attr.ACT_BADARCH, BAD_ARCH_ACTION)
    # A binary tree over the call number: each passthrough call walks about nine
    # comparisons instead of a chain of several hundred.
    filt.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    notified = frozenset(notify)
    for rule in sorted(policy.rules.values(), key=lambda rule: rule.nr):
        if rule.nr in notified and rule.cls is not SyscallClass.DENIED:
            filt.add_rule(seccomp.NOTIFY, rule.nr)
        else:
            _add_rule(filt, rule)
    return filt


def install(policy: Policy, all_threads: bool = False) -> None:
    """Load POLICY's filter into the calling process.

    Call it in the application's process after fork and before execve. It
    sets no_new_privs first: the kernel requires that bit (or CAP_SYS_ADMIN)
    to load a filter, and it stops a setuid binary from gaining privileges
    the sentry does not track. ALL_THREADS loads the filter into every thread
    of the process (SECCOMP_FILTER_FLAG_TSYNC) and not only the caller.
    """
    _load(build_filter(policy), all_threads)


def export_bpf(policy: Policy, notify: Iterable[int] = ()) -> bytes:
    """Return POLICY's filter as raw BPF: 8-byte struct sock_filter records."""
    return _export(build_filter(policy, notify))


def export_gofer_bpf() -> bytes:
    """Return the gofer's allow-list filter; every other call fails with EPERM."""
    _require_x86_64()
    filt = seccomp.SyscallFilter(seccomp.ERRNO(errno.EPERM))
    filt.set_attr(seccomp.Attr.ACT_BADARCH, BAD_ARCH_ACTION)
    for name in GOFER_SYSCALLS:
        filt.add_rule(seccomp.ALLOW, syscalls.number(name))
    return _export(filt)


def build_sentry_filter(extra: Iterable[str] = ()) -> seccomp.SyscallFilter:
    """Build the sentry's own allow-list filter: SENTRY_SYSCALLS plus EXTRA.

    Every other call fails with EPERM. This is best effort: it narrows the
    kernel interface a compromised sentry can reach, but it still allows
    openat, clone and ptrace, so it does not confine file access or stop the
    sentry from tracing. Load it only after the sentry has started the
    application, because a child forked later inherits it under its own
    filter, and denies execve.
    """
    _require_x86_64()
    filt = seccomp.SyscallFilter(seccomp.ERRNO(errno.EPERM))
    filt.set_attr(seccomp.Attr.ACT_BADARCH, BAD_ARCH_ACTION)
    for name in (*SENTRY_SYSCALLS, *extra):
        filt.add_rule(seccomp.ALLOW, syscalls.number(name))
    return filt


def install_sentry_filter(extra: Iterable[str] = ()) -> None:
    """Load the sentry's allow-list filter into every thread of this process."""
    _load(build_sentry_filter(extra), all_threads=True)


def export_sentry_bpf(extra: Iterable[str] = ()) -> bytes:
    return _export(build_sentry_filter(extra))


def _require_x86_64() -> None:
    native = seccomp.system_arch()
    if native != seccomp.Arch.X86_64:
        raise OSError(
            errno.ENOTSUP,
            f"the sentry's filter supports only x86-64, but libseccomp reports "
            f"native architecture {native:#x}",
        )


def _add_rule(filt: seccomp.SyscallFilter, rule: Rule) -> None:
    if rule.cls is SyscallClass.PASSTHROUGH:
        filt.add_rule(seccomp.ALLOW, rule.nr)
    elif rule.cls is SyscallClass.DENIED and rule.errno != UNKNOWN_SYSCALL_ERRNO:
        filt.add_rule(seccomp.ERRNO(rule.errno), rule.nr)
    elif rule.cls is SyscallClass.DENIED:
        # The default action already returns this errno, and libseccomp rejects
        # a rule whose action equals the default with EACCES.
        pass
    elif rule.condition is None:
        filt.add_rule(seccomp.TRACE(rule.nr), rule.nr)
    else:
        _add_conditional(filt, rule.nr, rule.condition)


def _add_conditional(filt: seccomp.SyscallFilter, nr: int, cond: Condition) -> None:
    """Add rules that trace the calls meeting COND and allow the rest.

    libseccomp lets an unconditional rule override every conditional rule of
    the same call, and a rule may compare each argument only once, so the two
    outcomes are written as complementary conditions.
    """
    trace = seccomp.TRACE(nr)
    if cond.mask is None:
        filt.add_rule(seccomp.ALLOW, nr, seccomp.Arg(cond.arg, seccomp.EQ, 0))
        filt.add_rule(trace, nr, seccomp.Arg(cond.arg, seccomp.NE, 0))
        return
    filt.add_rule(
        seccomp.ALLOW, nr, seccomp.Arg(cond.arg, seccomp.MASKED_EQ, cond.mask, 0)
    )
    for bit in _bits(cond.mask):
        filt.add_rule(trace, nr, seccomp.Arg(cond.arg, seccomp.MASKED_EQ, bit, bit))


def _bits(mask: int) -> list[int]:
    return [1 << i for i in range(64) if mask >> i & 1]


def _load(filt: seccomp.SyscallFilter, all_threads: bool) -> None:
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    if all_threads:
        filt.set_attr(seccomp.Attr.CTL_TSYNC, 1)
    filt.load()


def _export(filt: seccomp.SyscallFilter) -> bytes:
    import tempfile

    with tempfile.TemporaryFile() as out:
        filt.export_bpf(out)
        out.seek(0)
        return out.read()

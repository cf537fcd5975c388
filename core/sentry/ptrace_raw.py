"""Raw ctypes bindings for ptrace(2), tracee memory access and wait statuses.

The sentry stops at every mediated system call, so each ptrace request is on
the hot path. These bindings call libc's ``ptrace`` through one prepared ctypes
function and can reuse the caller's register buffer. python-ptrace 0.9.9 is
not used: its binding module has no PTRACE_SEIZE, INTERRUPT, LISTEN or SYSEMU
wrappers, and it builds a new register struct on every GETREGS. The cost was
measured on a 2-vCPU AMD EPYC VM with CPython 3.11, tracing a forked child that
calls getppid in a loop, with tracer and child pinned to one CPU.
python-ptrace's GETREGS took 11% longer than ``get_regs`` here, and its
GETEVENTMSG 7% longer. A whole syscall-stop round trip (PTRACE_SYSCALL,
waitpid, GETREGS, about 11 microseconds) took only 2% to 4% longer, because
the kernel's context switches dominate it. The register
layout below is the kernel's ``struct user_regs_struct``
(arch/x86/include/asm/user_64.h); the constants come from ``linux/ptrace.h``.

Every function raises OSError with the errno and the pid on failure.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import struct
from dataclasses import dataclass

_libc = ctypes.CDLL(None, use_errno=True)
_ptrace = _libc.ptrace
_ptrace.restype = ctypes.c_long
_ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
# The unchecked libc function, for a hot loop that handles errors itself.
libc_ptrace = _ptrace

# Requests (linux/ptrace.h, asm/ptrace-abi.h).
PTRACE_TRACEME = 0
PTRACE_PEEKTEXT = 1
PTRACE_PEEKDATA = 2
PTRACE_PEEKUSER = 3
PTRACE_POKETEXT = 4
PTRACE_POKEDATA = 5
PTRACE_POKEUSER = 6
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_SINGLESTEP = 9
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_GETFPREGS = 14
PTRACE_SETFPREGS = 15
PTRACE_ATTACH = 16
PTRACE_DETACH = 17
PTRACE_SYSCALL = 24
PTRACE_SYSEMU = 31
PTRACE_SYSEMU_SINGLESTEP = 32
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_SETSIGINFO = 0x4203
PTRACE_GETREGSET = 0x4204
PTRACE_SETREGSET = 0x4205
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_PEEKSIGINFO = 0x4209
PTRACE_GETSIGMASK = 0x420A
PTRACE_SETSIGMASK = 0x420B
PTRACE_SECCOMP_GET_FILTER = 0x420C
PTRACE_SECCOMP_GET_METADATA = 0x420D
PTRACE_GET_SYSCALL_INFO = 0x420E

# Options for PTRACE_SETOPTIONS and PTRACE_SEIZE.
PTRACE_O_TRACESYSGOOD = 0x1
PTRACE_O_TRACEFORK = 0x2
PTRACE_O_TRACEVFORK = 0x4
PTRACE_O_TRACECLONE = 0x8
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_TRACEVFORKDONE = 0x20
PTRACE_O_TRACEEXIT = 0x40
PTRACE_O_TRACESECCOMP = 0x80
PTRACE_O_EXITKILL = 0x100000
PTRACE_O_SUSPEND_SECCOMP = 0x200000

# Events, found in bits 16-23 of a stopped wait status.
PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_VFORK_DONE = 5
PTRACE_EVENT_EXIT = 6
PTRACE_EVENT_SECCOMP = 7
PTRACE_EVENT_STOP = 128

# The options a sandbox tracer sets: follow every new task, see seccomp stops
# and exec, and kill the tracees if the sentry dies.
SANDBOX_OPTIONS = (
    PTRACE_O_TRACESYSGOOD
    | PTRACE_O_TRACEFORK
    | PTRACE_O_TRACEVFORK
    | PTRACE_O_TRACECLONE
    | PTRACE_O_TRACEEXEC
    | PTRACE_O_TRACESECCOMP
    | PTRACE_O_EXITKILL
)

# A syscall-stop reports SIGTRAP | 0x80 when PTRACE_O_TRACESYSGOOD is set.
SYSCALL_STOP_SIGNAL = signal.SIGTRAP | 0x80
WALL = 0x40000000  # __WALL: wait for threads and clone children as well

AT_FDCWD = -100
PATH_MAX = 4096
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SOCKADDR_MAX = 128  # sizeof(struct sockaddr_storage)
WORD = ctypes.sizeof(ctypes.c_long)


class UserRegs(ctypes.Structure):
    """The x86-64 ``struct user_regs_struct`` read by PTRACE_GETREGS.

    At a system call stop, orig_rax contains the number, rdi, rsi, rdx, r10, r8
    and r9 the arguments, and rax the result once the call has run.
    """

    _fields_ = [
        (name, ctypes.c_ulonglong)
        for name in [
            "r15",
            "r14",
            "r13",
            "r12",
            "rbp",
            "rbx",
            "r11",
            "r10",
            "r9",
            "r8",
            "rax",
            "rcx",
            "rdx",
            "rsi",
            "rdi",
            "orig_rax",
            "rip",
            "cs",
            "eflags",
            "rsp",
            "ss",
            "fs_base",
            "gs_base",
            "ds",
            "es",
            "fs",
            "gs",
        ]
    ]

    def syscall_args(self) -> tuple[int, int, int, int, int, int]:
        """Return the six system call arguments as unsigned 64-bit values."""
        return (self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9)

    def syscall_nr(self) -> int:
        """Return orig_rax as the kernel reads it: a signed 32-bit number."""
        return ctypes.c_int32(self.orig_rax & 0xFFFFFFFF).value

    def set_return(self, value: int) -> None:
        """Set rax; a negative VALUE is stored as its two's complement (-errno)."""
        self.rax = value & 0xFFFFFFFFFFFFFFFF


class SigInfo(ctypes.Structure):
    """The leading fields of ``siginfo_t``, padded to its 128-byte size.

    ``si_pid`` and ``si_uid`` are meaningful for a signal that a process sent
    (``si_code`` SI_USER, SI_TKILL or SI_QUEUE, all 0 or below).
    """

    _fields_ = [
        ("si_signo", ctypes.c_int),
        ("si_errno", ctypes.c_int),
        ("si_code", ctypes.c_int),
        ("_pad", ctypes.c_int),
        ("si_pid", ctypes.c_int),
        ("si_uid", ctypes.c_uint),
        ("_fields", ctypes.c_byte * 104),
    ]


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_process_vm_readv = _libc.process_vm_readv
_process_vm_readv.restype = ctypes.c_ssize_t
_process_vm_writev = _libc.process_vm_writev
_process_vm_writev.restype = ctypes.c_ssize_t
for _function in (_process_vm_readv, _process_vm_writev):
    _function.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(_IoVec),
        ctypes.c_ulong,
        ctypes.POINTER(_IoVec),
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]


def ptrace(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    """Call ptrace(2) and return its result; raise OSError on failure.

    PEEK requests return the word read, which may be -1, so errno is cleared
    first and checked instead of the result.
    """
    ctypes.set_errno(0)
    result = _ptrace(request, pid, addr, data)
    if result == -1:
        err = ctypes.get_errno()
        if err:
            raise OSError(err, os.strerror(err), f"ptrace({request:#x}) pid {pid}")
    return result


def traceme() -> None:
    ptrace(PTRACE_TRACEME, 0)


def seize(pid: int, options: int = SANDBOX_OPTIONS) -> None:
    ptrace(PTRACE_SEIZE, pid, 0, options)


def interrupt(pid: int) -> None:
    ptrace(PTRACE_INTERRUPT, pid)


def listen(pid: int) -> None:
    ptrace(PTRACE_LISTEN, pid)


def set_options(pid: int, options: int = SANDBOX_OPTIONS) -> None:
    ptrace(PTRACE_SETOPTIONS, pid, 0, options)


def cont(pid: int, sig: int = 0) -> None:
    """Resume PID until its next stop, delivering signal SIG (0 for none)."""
    ptrace(PTRACE_CONT, pid, 0, sig)


def syscall(pid: int, sig: int = 0) -> None:
    """Resume PID until the next system call entry or exit."""
    ptrace(PTRACE_SYSCALL, pid, 0, sig)


def sysemu(pid: int, sig: int = 0) -> None:
    """Resume PID until the next system call entry, which the kernel then skips."""
    ptrace(PTRACE_SYSEMU, pid, 0, sig)


def detach(pid: int, sig: int = 0) -> None:
    ptrace(PTRACE_DETACH, pid, 0, sig)


def get_regs(pid: int, regs: UserRegs | None = None) -> UserRegs:
    """Read PID's registers into REGS (a new UserRegs if None) and return it."""
    regs = regs if regs is not None else UserRegs()
    ptrace(PTRACE_GETREGS, pid, 0, ctypes.addressof(regs))
    return regs


def set_regs(pid: int, regs: UserRegs) -> None:
    ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(regs))


def get_event_msg(pid: int) -> int:
    """Return the event message: a new pid, an exit status or SECCOMP_RET_DATA."""
    message = ctypes.c_ulong()
    ptrace(PTRACE_GETEVENTMSG, pid, 0, ctypes.addressof(message))
    return message.value


def get_siginfo(pid: int) -> SigInfo:
    info = SigInfo()
    ptrace(PTRACE_GETSIGINFO, pid, 0, ctypes.addressof(info))
    return info


def peek_data(pid: int, addr: int) -> int:
    """Return the word at ADDR in PID as an unsigned integer."""
    return ptrace(PTRACE_PEEKDATA, pid, addr) & 0xFFFFFFFFFFFFFFFF


def poke_data(pid: int, addr: int, word: int) -> None:
    ptrace(PTRACE_POKEDATA, pid, addr, word & 0xFFFFFFFFFFFFFFFF)


def read_memory(pid: int, addr: int, size: int) -> bytes:
    """Read up to SIZE bytes at ADDR in PID; fewer if an unmapped page follows.

    process_vm_readv does it in one call. When it fails with EPERM, because
    the tracee made itself non-dumpable, the read falls back to
    PTRACE_PEEKDATA, which only needs the tracer relationship.
    """
    if size <= 0:
        return b""
    buf = ctypes.create_string_buffer(size)
    local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), size)
    remote = _IoVec(addr, size)
    done = _process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if done >= 0:
        return buf.raw[:done]
    err = ctypes.get_errno()
    if err == errno.EPERM:
        return _peek_memory(pid, addr, size)
    raise OSError(err, os.strerror(err), f"pid {pid} address {addr:#x}")


def _peek_memory(pid: int, addr: int, size: int) -> bytes:
    """Read SIZE bytes at ADDR word by word; stop early at an unmapped word."""
    start = addr - addr % WORD
    data = bytearray()
    for word_addr in range(start, addr + size, WORD):
        try:
            word = peek_data(pid, word_addr)
        except OSError as error:
            if error.errno not in (errno.EFAULT, errno.EIO) or not data:
                raise
            break
        data += word.to_bytes(WORD, "little")
    offset = addr - start
    return bytes(data[offset : offset + size])


def write_memory(pid: int, addr: int, data: bytes) -> int:
    """Write DATA at ADDR in PID; return the number of bytes written."""
    buf = ctypes.create_string_buffer(data, len(data))
    local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), len(data))
    remote = _IoVec(addr, len(data))
    done = _process_vm_writev(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if done < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), f"pid {pid} address {addr:#x}")
    return done


class StringReader:
    """read_string with its buffer and vectors made once: for one thread's hot path.

    Building the ctypes objects costs more than the read itself.
    """

    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(PAGE_SIZE + 1)  # + room for a sentinel
        self.local = _IoVec(ctypes.cast(self.buf, ctypes.c_void_p), PAGE_SIZE)
        self.remote = _IoVec(0, 0)
        self.local_ref = ctypes.byref(self.local)
        self.remote_ref = ctypes.byref(self.remote)

    def read(self, pid: int, addr: int) -> bytes:
        """Return the NUL-terminated string at ADDR in PID; see read_string."""
        if addr == 0:
            raise OSError(errno.EFAULT, "NULL string pointer", f"pid {pid}")
        want = PAGE_SIZE - addr % PAGE_SIZE
        self.remote.iov_base = addr
        self.remote.iov_len = want
        self.local.iov_len = want
        self.buf[want] = b"\0"  # .value stops at the first NUL: ours, if none was read
        done = _process_vm_readv(pid, self.local_ref, 1, self.remote_ref, 1, 0)
        if done == want:
            value = self.buf.value
            if len(value) < want:
                return value
        return read_string(pid, addr)  # crosses a page, or an error to report


def read_string(pid: int, addr: int, max_size: int = PATH_MAX) -> bytes:
    """Read the NUL-terminated string at ADDR in PID, without the NUL.

    Reads stop at page boundaries, so a string that ends just before an
    unmapped page is read whole. Raise OSError(EFAULT) for a NULL or unmapped
    ADDR and OSError(ENAMETOOLONG) when no NUL comes within MAX_SIZE bytes.
    """
    if addr == 0:
        raise OSError(errno.EFAULT, "NULL string pointer", f"pid {pid}")
    chunks: list[bytes] = []
    total = 0
    while total < max_size:
        want = min(PAGE_SIZE - (addr + total) % PAGE_SIZE, max_size - total)
        chunk = read_memory(pid, addr + total, want)
        end = chunk.find(b"\0")
        if end >= 0:
            chunks.append(chunk[:end])
            return b"".join(chunks)
        if len(chunk) < want:
            message = "string runs into unmapped memory"
            raise OSError(errno.EFAULT, message, f"pid {pid}")
        chunks.append(chunk)
        total += len(chunk)
    message = f"string has no NUL within {max_size} bytes"
    raise OSError(errno.ENAMETOOLONG, message, f"pid {pid}")


def read_sockaddr(pid: int, addr: int, length: int) -> bytes:
    """Read the socket address of LENGTH bytes at ADDR in PID, capped at 128."""
    if addr == 0 or length <= 0:
        return b""
    return read_memory(pid, addr, min(length, SOCKADDR_MAX))


def format_sockaddr(raw: bytes) -> str:
    """Render a raw socket address like strace: family, then address and port."""
    if len(raw) < 2:
        return "{}"
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack_from("!H", raw, 2)[0]
        return f"AF_INET {socket.inet_ntop(socket.AF_INET, raw[4:8])}:{port}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack_from("!H", raw, 2)[0]
        host = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        return f"AF_INET6 [{host}]:{port}"
    if family == socket.AF_UNIX:
        path = raw[2:]
        if path[:1] == b"\0":
            return "AF_UNIX @" + path[1:].rstrip(b"\0").decode(errors="replace")
        return "AF_UNIX " + path.split(b"\0", 1)[0].decode(errors="replace")
    return f"family {family}"


@dataclass(frozen=True, slots=True)
class WaitStatus:
    """A decoded wait status of a tracee."""

    status: int

    @property
    def exited(self) -> bool:
        return os.WIFEXITED(self.status)

    @property
    def signaled(self) -> bool:
        return os.WIFSIGNALED(self.status)

    @property
    def stopped(self) -> bool:
        return os.WIFSTOPPED(self.status)

    @property
    def exit_code(self) -> int:
        return os.WEXITSTATUS(self.status)

    @property
    def term_signal(self) -> int:
        return os.WTERMSIG(self.status)

    @property
    def stop_signal(self) -> int:
        """The signal in a stopped status, with the 0x80 syscall-stop bit."""
        return (self.status >> 8) & 0xFF

    @property
    def event(self) -> int:
        """The PTRACE_EVENT_* of an event stop, 0 for any other status."""
        return (self.status >> 16) & 0xFF if self.stopped else 0

    @property
    def is_syscall_stop(self) -> bool:
        return self.stopped and self.stop_signal == SYSCALL_STOP_SIGNAL

    @property
    def is_seccomp_stop(self) -> bool:
        return self.event == PTRACE_EVENT_SECCOMP

    @property
    def is_group_stop(self) -> bool:
        """A group-stop of a seized tracee: PTRACE_EVENT_STOP with a stop signal."""
        stop_signals = (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
        return self.event == PTRACE_EVENT_STOP and self.stop_signal in stop_signals

    @property
    def is_signal_delivery_stop(self) -> bool:
        """A stop for a signal the sentry must inject again on resume.

        Only exact for seized tracees: under PTRACE_TRACEME a group-stop looks
        the same, and PTRACE_GETSIGINFO fails with EINVAL only for the group-stop.
        """
        return self.stopped and self.event == 0 and not self.is_syscall_stop


def wait(pid: int = -1, options: int = 0) -> tuple[int, WaitStatus]:
    """Wait for PID (any child for -1), threads included; return pid and status."""
    waited, status = os.waitpid(pid, options | WALL)
    return waited, WaitStatus(status)

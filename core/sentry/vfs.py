"""The sentry's path layer: where each path-based call of the application goes.

With a file server (the gofer), the sandbox's mount namespace holds only its
own mounts: a tmpfs root, proc, sysfs, /dev and the spec's other kernel and
tmpfs mounts. Every path-based call of the application arrives here as a
seccomp user notification, and goes one of two ways:

- A path inside one of the sandbox's own mounts (``/proc/self/status``,
  ``/dev/null``) is left to the kernel, which resolves it in the sandbox's
  namespace. Nothing there is a host directory, so even a path the
  application rewrites after this check cannot reach the host.
- Any other path goes to the file server with the caller's credentials. An
  open comes back as a descriptor that SECCOMP_IOCTL_NOTIF_ADDFD installs in
  the caller. A stat comes back as the kernel's struct, written into the
  caller's buffer. The server answers REDIRECT when a symlink or ".." leads
  into a sandbox mount, and the call is then left to the kernel as well.

The sentry never opens or looks up a path for the application: its own
descriptors and credentials are not the caller's.

The sentry reads each path once and acts on its own copy, so a thread that
rewrites the path afterwards changes nothing.

The sentry tracks a working directory per process and joins relative paths
to it. The kernel's own follows it into sandbox mounts, and into empty
directories of the same paths on the sandbox's root, which is read-only to
the application.

execve cannot take a descriptor from elsewhere, so the tracer rewrites it:
the program is copied once into ``/.stockade/exec`` in the sandbox's tmpfs
(and its ELF interpreter to the path the binary names), and the call is
pointed at the copy. A ``#!`` script runs through its interpreter, as the
kernel would run it.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import fileproto as fp
from . import notify
from . import ptrace_raw
from .calls import SyscallCall, signed, signed32
from .syscalls import SYSCALLS, ArgKind, number

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
O_CREAT_WRONLY_TRUNC = os.O_CREAT | os.O_WRONLY | os.O_TRUNC
EXEC_DIR = b"/.stockade/exec"
LISTENER_FD = notify.LISTENER_FD
MAX_INTERPRETER_DEPTH = 4  # the kernel's BINPRM_MAX_RECURSION
COPY_BUDGET = 512 << 20  # bytes of program copies kept on the sandbox's root
XATTR_SIZE_MAX = 65536  # the kernel's limit on an attribute value
SOCKADDR_UN_SIZE = 110  # sa_family_t and sun_path[108]
SHORT_READ = 256  # a first read of a path; most are shorter
SCRATCH_BELOW_SP = 256  # below the 128-byte red zone the ABI reserves
STAT_SIZE, STATX_SIZE, STATFS_SIZE = 144, 256, 120
SYS_NEWFSTATAT, SYS_STATX = 262, 332
CONTINUE = object()  # let the kernel run the call as made

# The identity calls: the sentry drops the caller's cached credentials.
IDENTITY_CALLS = (
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
    "setfsuid", "setfsgid", "setgroups", "capset", "umask",
)  # fmt: skip
EXEC_CALLS = frozenset({number("execve"), number("execveat")})
# Path calls the gofer does not serve. They fail, rather than reach the kernel,
# which would look the path up in the sandbox's mounts. Newer calls fail with
# ENOSYS, so that libc falls back to the older ones.
# NOTE: chroot is not available to containers in the gofer mode.
UNSERVED_CALLS = (
    "chroot", "setxattrat", "getxattrat", "listxattrat", "removexattrat",
    "file_getattr", "file_setattr",
)  # fmt: skip


class _LeaveToKernel(Exception):
    """Raised by a handler whose call the kernel may run as made."""


@dataclass(slots=True)
class Fd:
    """A descriptor to install in the caller as the call's result."""

    fd: int
    cloexec: bool


@dataclass(slots=True)
class Target:
    """A path's destination: the sandbox (the kernel or the sentry) or the server."""

    sandbox: bool
    # Absolute for the sandbox; for the server, absolute or relative to base.
    path: bytes
    base: int = -1  # a descriptor of the caller's directory, for the server
    as_made: bool = False  # the kernel resolves the caller's own string to PATH
    relative_to_base: bool = False  # set from base; stays after close

    def __post_init__(self) -> None:
        self.relative_to_base = self.base >= 0

    def close(self) -> None:
        if self.base >= 0:
            os.close(self.base)
            self.base = -1


@dataclass(slots=True)
class Process:
    cwd: bytes = b"/"
    # The kernel's working directory, in the sandbox's namespace, when known.
    # Relative paths go to the kernel only while it equals cwd.
    kernel_cwd: bytes | None = b"/"
    exe: bytes = b""
    # In a sandbox mount the kernel's cwd is the truth: read it when needed.
    cwd_from_kernel: bool = False

    def copy(self) -> Process:
        return Process(self.cwd, self.kernel_cwd, self.exe, self.cwd_from_kernel)


class Credentials:
    __slots__ = ("fs", "real")

    def __init__(self, fs: fp.Credentials, real: fp.Credentials) -> None:
        self.fs = fs
        self.real = real


def clean(path: bytes) -> bytes | None:
    """PATH without empty and "." parts; None if it has ".." (only a walk decides)."""
    parts = [p for p in path.split(b"/") if p and p != b"."]
    if b".." in parts:
        return None
    return b"/" + b"/".join(parts)


class PathLayer:
    """The handler of one sandbox's path-based calls; see the module docstring."""

    def __init__(
        self, client: fp.FileClient, spec: Any, container_id: str = ""
    ) -> None:
        self.client = client
        self.spec = spec
        self.routes: list[tuple[bytes, bool]] = []
        self.container_id = container_id
        self.procs: dict[int, Process] = {}
        self.tgids: dict[int, int] = {}
        # tgid -> the process's id in its own PID namespace, as it names itself
        self.own_tgids: dict[int, int] = {}
        self.creds: dict[int, Credentials] = {}
        self.forked: dict[int, Process] = {}  # child tid -> its parent's state at fork
        self.pidfds: dict[int, int] = {}
        self.sandbox_devs: set[int] = set()
        self.copies: dict[tuple[int, ...], bytes] = {}  # in order of last use
        self.copy_sizes: dict[bytes, int] = {}
        self.copy_bytes = 0
        self.interpreters: dict[bytes, tuple[int, ...]] = {}
        self.deciders: list[Any] = []
        self.container: Any = None
        self.report: Callable[[SyscallCall, int], None] | None = None
        self.handlers: dict[int, Callable[[int, tuple[int, ...], int], Any]] = {}
        self._register()
        self._epoll: select.epoll | None = None
        # Strings read for the current notification: (tid, address) -> bytes.
        self._memo: dict[tuple[int, int], bytes] = {}
        self._reader = ptrace_raw.StringReader()  # the listener thread's
        self._mem: dict[int, int] = {}  # tgid -> /proc/TGID/mem, the listener thread's
        self._gone: list[int] = []  # exited tgids whose descriptors it must close
        self._listeners: dict[int, notify.Listener] = {}

    # --- set-up -------------------------------------------------------------

    def notified_numbers(self, policy_numbers: frozenset[int]) -> frozenset[int]:
        """Return the calls the application's filter sends here: those the policy runs."""
        return frozenset(self.handlers) & policy_numbers

    def start(self) -> None:
        """In the sandbox after pivot_root: note its mounts, start the listener thread.

        The spec's destinations are read here, after the file-access provider
        has placed the sandbox's mounts.
        """
        from ..rootfs import is_bind

        routes = [
            (os.path.normpath(m["destination"]).encode(), not is_bind(m))
            for m in self.spec.mounts
        ]
        routes.sort(key=lambda item: len(item[0]), reverse=True)
        self.routes = routes
        for prefix, sandbox in self.routes:
            if sandbox:
                try:
                    self.sandbox_devs.add(os.stat(prefix).st_dev)
                except OSError:
                    pass
        self.sandbox_devs.add(os.stat(b"/").st_dev)
        root = getattr(self.container, "sandbox_root_fd", -1)
        self.scratch = root if root >= 0 else os.open(b"/", os.O_PATH | os.O_DIRECTORY)
        self._make_dirs(EXEC_DIR)
        os.chmod(_relative(EXEC_DIR), 0o711, dir_fd=self.scratch)
        self._epoll = select.epoll()
        threading.Thread(target=self._serve, name="paths", daemon=True).start()

    def adopt_listener(self, pid: int) -> bool:
        """Take the listener PID left at LISTENER_FD; False if there is none."""
        listener = notify.take_listener(pid)
        if listener is None or self._epoll is None:
            return False
        self._listeners[listener.fd] = listener
        self._epoll.register(listener.fd, select.EPOLLIN)
        return True

    # --- processes --------------------------------------------------------------

    def on_fork(self, parent: int, child: int) -> None:
        """Called by the tracer at a fork, vfork or clone event, before resuming PARENT."""
        proc = self.procs.get(self.tgids.get(parent, parent))
        if proc is not None:
            self.forked[child] = proc.copy()

    def on_exit(self, tid: int) -> None:
        self.creds.pop(tid, None)
        self.forked.pop(tid, None)
        tgid = self.tgids.pop(tid, tid)
        if tgid == tid:
            self._gone.append(tid)
            self.procs.pop(tid, None)
            self.own_tgids.pop(tid, None)
            pidfd = self.pidfds.pop(tid, None)
            if pidfd is not None:
                os.close(pidfd)

    def on_exec(self, tid: int) -> None:
        for other in [t for t, g in self.tgids.items() if g == self.tgids.get(tid)]:
            self.creds.pop(other, None)
        self.creds.pop(tid, None)

    def _process(self, tid: int) -> Process:
        tgid = self.tgids.get(tid)
        if tgid is None:
            tgid = self._learn(tid)
        proc = self.procs.get(tgid)
        if proc is None:
            proc = self.forked.pop(tid, None) or self.forked.pop(tgid, None)
            if proc is None:
                # The fork event may not have been seen yet: copy the parent now.
                parent = self.procs.get(self._parent_of(tgid))
                proc = parent.copy() if parent else Process()
            self.procs[tgid] = proc
        return proc

    def _learn(self, tid: int) -> int:
        """Read TID's thread group and credentials from /proc."""
        self._read_status(tid)
        return self.tgids.get(tid, tid)

    def _read_status(self, tid: int) -> Credentials:
        fields: dict[str, str] = {}
        try:
            with open(f"/proc/{tid}/status", "rb") as f:
                for line in f.read().decode().splitlines():
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
        except OSError:
            raise OSError(errno.ESRCH, "caller is gone") from None
        tgid = int(fields.get("Tgid", tid))
        self.tgids[tid] = tgid
        self.own_tgids[tgid] = int(fields.get("NStgid", str(tgid)).split()[-1])
        uids = [int(x) for x in fields.get("Uid", "0 0 0 0").split()]
        gids = [int(x) for x in fields.get("Gid", "0 0 0 0").split()]
        groups = tuple(int(x) for x in fields.get("Groups", "").split())
        umask = int(fields.get("Umask", "0022"), 8)
        caps = int(fields.get("CapEff", "0"), 16)
        creds = Credentials(
            fp.Credentials(uids[3], gids[3], groups, umask, caps),
            fp.Credentials(
                uids[0], gids[0], groups, umask, caps if uids[0] == 0 else 0
            ),
        )
        self.creds[tid] = creds
        return creds

    def _parent_of(self, tgid: int) -> int:
        try:
            with open(f"/proc/{tgid}/stat", "rb") as f:
                return int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return 0

    def _creds(self, tid: int) -> Credentials:
        creds = self.creds.get(tid)
        return creds if creds is not None else self._read_status(tid)

    def _pidfd(self, tid: int) -> int:
        tgid = self.tgids.get(tid) or self._learn(tid)
        fd = self.pidfds.get(tgid)
        if fd is None:
            fd = os.pidfd_open(tgid)
            self.pidfds[tgid] = fd
        return fd

    def _fetch_fd(self, tid: int, fd: int) -> int:
        try:
            return notify.pidfd_getfd(self._pidfd(tid), fd)
        except OSError:
            raise OSError(errno.EBADF, f"bad descriptor {fd}") from None

    # --- the listener thread ---------------------------------------------------------

    def _serve(self) -> None:
        assert self._epoll is not None
        while True:
            try:
                events = self._epoll.poll()
            except InterruptedError:
                continue
            for fd, mask in events:
                listener = self._listeners.get(fd)
                if listener is None:
                    continue
                if mask & select.EPOLLIN:
                    try:
                        notification = listener.receive()
                    except OSError:
                        notification = None
                        mask |= select.EPOLLHUP
                    if notification is not None:
                        try:
                            self.handle(listener, notification)
                        except Exception:  # noqa: BLE001
                            # This thread must outlive any bug: a call left
                            # unanswered would hang its caller for good.
                            _reply_quietly(listener, notification.id, errno.EIO)
                        continue
                if mask & (select.EPOLLHUP | select.EPOLLERR):
                    self._epoll.unregister(fd)
                    del self._listeners[fd]
                    os.close(fd)

    def handle(self, listener: notify.Listener, n: notify.Notification) -> None:
        """Reply to one notification: every path through here sends one reply."""
        while self._gone:
            fd = self._mem.pop(self._gone.pop(), None)
            if fd is not None:
                os.close(fd)
        try:
            self._answer(listener, n)
        finally:
            self._memo.clear()

    def _answer(self, listener: notify.Listener, n: notify.Notification) -> None:
        handler = self.handlers.get(n.nr)
        call = None
        try:
            if handler is None:
                raise OSError(errno.ENOSYS, "not a path call")
            if self.deciders or self.report is not None:
                call = self._call_record(n)
                for decide in self.deciders:
                    error = decide(container=self.container, call=call)
                    if error:
                        raise OSError(error, "vetoed")
            result = handler(n.pid, n.args, n.id)
        except _LeaveToKernel:
            result = CONTINUE
        except fp.ServerGone:
            result = OSError(errno.EIO, "file server gone")
        except OSError as exc:
            result = exc
        except Exception as exc:  # noqa: BLE001 - a bug must fail the call, not the sentry
            result = OSError(errno.EIO, str(exc))
        # A caller that died meanwhile makes the reply fail with ENOENT, and an
        # ADDFD then installs nothing: no need to ask first whether it lives.
        if result is CONTINUE:
            listener.let_run(n.id)
            value = None
        elif isinstance(result, Fd):
            value = listener.reply_fd(n.id, result.fd, result.cloexec)
            os.close(result.fd)
        elif isinstance(result, OSError):
            value = -(result.errno or errno.EIO)
            listener.reply(n.id, error=result.errno or errno.EIO)
        else:
            value = int(result)
            listener.reply(n.id, value=value)
        if call is not None and self.report is not None and value is not None:
            self.report(call, value)

    def _call_record(self, n: notify.Notification) -> SyscallCall:
        """The call as plugins see it: its strings read once, and kept for the handler.

        The handler acts on these same copies, so what a plugin allowed is what
        runs, whatever another thread writes meanwhile.
        """
        call = SyscallCall(self.container_id, n.pid, n.nr, n.args)
        entry = SYSCALLS.get(n.nr)
        decoded: list[Any] = []
        for index, kind in enumerate(entry.args if entry is not None else ()):
            if kind in (ArgKind.PATH, ArgKind.STR):
                try:
                    raw = self._read(n.pid, n.args[index])
                except OSError:
                    decoded.append(None)
                    continue
                decoded.append(raw.decode("utf-8", "backslashreplace"))
            else:
                decoded.append(call._decode(index, kind))
        call._decoded = decoded
        return call

    # --- targets -------------------------------------------------------------------

    def _side(self, path: bytes) -> bool:
        for prefix, sandbox in self.routes:
            if path == prefix or path.startswith(prefix + b"/") or prefix == b"/":
                return sandbox
        return False

    def target(self, tid: int, dirfd: int, path: bytes) -> Target:
        """Decide where PATH, relative to DIRFD of caller TID, is resolved."""
        if not path:
            raise OSError(errno.ENOENT, "empty path")
        if path.startswith(b"/"):
            cleaned = clean(path)
            if cleaned is not None and self._side(cleaned):
                return Target(True, cleaned, as_made=True)
            return Target(False, path, as_made=True)
        if dirfd == AT_FDCWD:
            proc = self._process(tid)
            joined = self._cwd(tid, proc).rstrip(b"/") + b"/" + path
            cleaned = clean(joined)
            if cleaned is not None and self._side(cleaned):
                return Target(True, cleaned, as_made=proc.kernel_cwd == proc.cwd)
            return Target(False, joined, as_made=proc.kernel_cwd == proc.cwd)
        fd = self._fetch_fd(tid, dirfd)
        if os.fstat(fd).st_dev not in self.sandbox_devs:
            return Target(False, path, base=fd)
        os.close(fd)
        # Relative to one of the sandbox's own directories: the kernel's business.
        return Target(True, path, as_made=True)

    def _kernel(self, t: Target) -> Any:
        """Leave a call whose path ends in the sandbox's own mounts to the kernel.

        The kernel resolves the caller's string with the caller's credentials
        in the sandbox's namespace, which contains no host directory, so this is
        safe whatever the string contains by then. It is refused only when the
        caller's working directory in the kernel is not the one its relative
        path was meant for.
        """
        t.close()
        if not t.as_made:
            # NOTE: a relative path from a directory reached through a symlink
            # cannot be left to the kernel, whose working directory differs.
            raise OSError(errno.EXDEV, "relative path into a sandbox mount")
        return CONTINUE

    def _redirected(self, t: Target) -> Any:
        """Handle a REDIRECT reply: a symlink or ".." leads into a sandbox mount."""
        if t.relative_to_base:
            t.close()
            raise OSError(
                errno.EXDEV, "from a container directory into a sandbox mount"
            )
        return self._kernel(t)

    def _read(self, tid: int, address: int) -> bytes:
        key = (tid, address)
        value = self._memo.get(key)
        if value is None:
            value = self._memo[key] = self._read_memory(tid, address)
        return value

    def _read_memory(self, tid: int, address: int) -> bytes:
        """Read a string of TID's with a pread of /proc/TGID/mem.

        That costs half a process_vm_readv here. Anything unusual takes the
        general path.
        """
        tgid = self.tgids.get(tid) or self._learn(tid)
        fd = self._mem.get(tgid)
        if fd is None:
            try:
                fd = self._mem[tgid] = os.open(
                    f"/proc/{tgid}/mem", os.O_RDONLY | os.O_CLOEXEC
                )
            except OSError:
                fd = -1
        if fd >= 0 and address:
            want = min(
                SHORT_READ, ptrace_raw.PAGE_SIZE - address % ptrace_raw.PAGE_SIZE
            )
            try:
                data = os.pread(fd, want, address)
            except OSError:
                data = b""
            end = data.find(b"\0")
            if end >= 0:
                return data[:end]
            if len(data) < want:  # an exec or an exit made the descriptor stale
                del self._mem[tgid]
                os.close(fd)
        return self._reader.read(tid, address)

    def _call(self, op: int, tid: int, t: Target, **kw: Any) -> fp.Reply:
        creds = kw.pop("creds", None) or self._creds(tid).fs
        try:
            reply = self.client.call(op, creds, t.path, fds=(t.base, -1, -1), **kw)
        finally:
            t.close()
        _raise_error(reply)
        return reply

    # --- handlers ----------------------------------------------------------------------

    def _register(self) -> None:
        h = self.handlers
        h[number("open")] = lambda tid, a, i: self._open(
            tid, AT_FDCWD, a[0], a[1], a[2]
        )
        h[number("creat")] = lambda tid, a, i: self._open(
            tid, AT_FDCWD, a[0], O_CREAT_WRONLY_TRUNC, a[1]
        )
        h[number("openat")] = lambda tid, a, i: self._open(
            tid, signed32(a[0]), a[1], a[2], a[3]
        )
        h[number("openat2")] = self._openat2
        h[number("stat")] = lambda tid, a, i: self._stat(tid, AT_FDCWD, a[0], a[1], 0)
        h[number("lstat")] = lambda tid, a, i: self._stat(
            tid, AT_FDCWD, a[0], a[1], AT_SYMLINK_NOFOLLOW
        )
        h[number("newfstatat")] = lambda tid, a, i: self._stat(
            tid, signed32(a[0]), a[1], a[2], a[3]
        )
        h[number("statx")] = self._statx
        h[number("access")] = lambda tid, a, i: self._access(
            tid, AT_FDCWD, a[0], a[1], 0
        )
        h[number("faccessat")] = lambda tid, a, i: self._access(
            tid, signed32(a[0]), a[1], a[2], 0
        )
        h[number("faccessat2")] = lambda tid, a, i: self._access(
            tid, signed32(a[0]), a[1], a[2], a[3]
        )
        h[number("readlink")] = lambda tid, a, i: self._readlink(
            tid, AT_FDCWD, a[0], a[1], a[2]
        )
        h[number("readlinkat")] = lambda tid, a, i: self._readlink(
            tid, signed32(a[0]), a[1], a[2], a[3]
        )
        h[number("mkdir")] = lambda tid, a, i: self._simple(
            fp.MKDIR, tid, AT_FDCWD, a[0], mode=a[1]
        )
        h[number("mkdirat")] = lambda tid, a, i: self._simple(
            fp.MKDIR, tid, signed32(a[0]), a[1], mode=a[2]
        )
        h[number("mknod")] = lambda tid, a, i: self._mknod(
            tid, AT_FDCWD, a[0], a[1], a[2]
        )
        h[number("mknodat")] = lambda tid, a, i: self._mknod(
            tid, signed32(a[0]), a[1], a[2], a[3]
        )
        h[number("unlink")] = lambda tid, a, i: self._simple(
            fp.UNLINK, tid, AT_FDCWD, a[0]
        )
        h[number("rmdir")] = lambda tid, a, i: self._simple(
            fp.UNLINK, tid, AT_FDCWD, a[0], flags=AT_REMOVEDIR
        )
        h[number("unlinkat")] = lambda tid, a, i: self._simple(
            fp.UNLINK, tid, signed32(a[0]), a[1], flags=a[2] & AT_REMOVEDIR
        )
        h[number("rename")] = lambda tid, a, i: self._two(
            fp.RENAME, tid, AT_FDCWD, a[0], AT_FDCWD, a[1], 0
        )
        h[number("renameat")] = lambda tid, a, i: self._two(
            fp.RENAME, tid, signed32(a[0]), a[1], signed32(a[2]), a[3], 0
        )
        h[number("renameat2")] = lambda tid, a, i: self._two(
            fp.RENAME, tid, signed32(a[0]), a[1], signed32(a[2]), a[3], a[4]
        )
        h[number("link")] = lambda tid, a, i: self._two(
            fp.LINK, tid, AT_FDCWD, a[0], AT_FDCWD, a[1], 0
        )
        h[number("linkat")] = lambda tid, a, i: self._two(
            fp.LINK, tid, signed32(a[0]), a[1], signed32(a[2]), a[3], a[4]
        )
        h[number("symlink")] = lambda tid, a, i: self._symlink(
            tid, a[0], AT_FDCWD, a[1]
        )
        h[number("symlinkat")] = lambda tid, a, i: self._symlink(
            tid, a[0], signed32(a[1]), a[2]
        )
        h[number("chmod")] = lambda tid, a, i: self._simple(
            fp.CHMOD, tid, AT_FDCWD, a[0], mode=a[1]
        )
        h[number("fchmodat")] = lambda tid, a, i: self._simple(
            fp.CHMOD, tid, signed32(a[0]), a[1], mode=a[2]
        )
        h[number("fchmodat2")] = lambda tid, a, i: self._simple(
            fp.CHMOD, tid, signed32(a[0]), a[1], mode=a[2], flags=a[3]
        )
        h[number("chown")] = lambda tid, a, i: self._chown(
            tid, AT_FDCWD, a[0], a[1], a[2], 0
        )
        h[number("lchown")] = lambda tid, a, i: self._chown(
            tid, AT_FDCWD, a[0], a[1], a[2], AT_SYMLINK_NOFOLLOW
        )
        h[number("fchownat")] = lambda tid, a, i: self._chown(
            tid, signed32(a[0]), a[1], a[2], a[3], a[4]
        )
        h[number("utimensat")] = self._utimensat
        h[number("utime")] = lambda tid, a, i: self._utimes(
            tid, AT_FDCWD, a[0], a[1], 8
        )
        h[number("utimes")] = lambda tid, a, i: self._utimes(
            tid, AT_FDCWD, a[0], a[1], 16
        )
        h[number("futimesat")] = lambda tid, a, i: self._utimes(
            tid, signed32(a[0]), a[1], a[2], 16
        )
        h[number("truncate")] = lambda tid, a, i: self._simple(
            fp.TRUNCATE, tid, AT_FDCWD, a[0], arg1=signed(a[1]) & ((1 << 64) - 1)
        )
        h[number("statfs")] = self._statfs
        h[number("chdir")] = lambda tid, a, i: self._chdir(tid, a[0])
        h[number("fchdir")] = lambda tid, a, i: self._fchdir(tid, signed32(a[0]))
        h[number("getcwd")] = self._getcwd
        for name, op in (
            ("getxattr", 0), ("lgetxattr", AT_SYMLINK_NOFOLLOW),
        ):  # fmt: skip
            h[number(name)] = self._getxattr_handler(op)
        for name, op in (("listxattr", 0), ("llistxattr", AT_SYMLINK_NOFOLLOW)):
            h[number(name)] = self._listxattr_handler(op)
        for name, op in (("setxattr", 0), ("lsetxattr", AT_SYMLINK_NOFOLLOW)):
            h[number(name)] = self._setxattr_handler(op)
        for name, op in (("removexattr", 0), ("lremovexattr", AT_SYMLINK_NOFOLLOW)):
            h[number(name)] = self._removexattr_handler(op)
        h[number("inotify_add_watch")] = self._inotify
        for name in IDENTITY_CALLS:
            h[number(name)] = self._identity
        for name in UNSERVED_CALLS:
            h[number(name)] = _unserved

    def _open(self, tid: int, dirfd: int, address: int, flags: int, mode: int) -> Any:
        t = self.target(tid, dirfd, self._read(tid, address))
        cloexec = bool(flags & os.O_CLOEXEC)
        if t.sandbox:
            return self._kernel(t)
        reply = self._call(fp.OPEN, tid, t, flags=flags, mode=mode & 0o7777)
        if reply.kind == fp.REDIRECT:
            return self._redirected(t)
        if reply.fd < 0:
            raise OSError(errno.EIO, "no descriptor in the reply")
        return Fd(reply.fd, cloexec)

    def _openat2(self, tid: int, a: tuple[int, ...], _id: int) -> Any:
        if a[3] < 24:
            raise OSError(errno.EINVAL, "open_how too small")
        flags, mode, resolve = struct.unpack(
            "<QQQ", ptrace_raw.read_memory(tid, a[2], 24)
        )
        if resolve & ~0x02:  # RESOLVE_NO_MAGICLINKS applies anyway to served paths
            # NOTE: the other RESOLVE_ flags are not emulated; callers fall back.
            raise OSError(errno.ENOSYS, "openat2 resolve flags")
        return self._open(tid, signed32(a[0]), a[1], flags, mode)

    def _stat(self, tid: int, dirfd: int, path_addr: int, buf: int, flags: int) -> Any:
        path = self._read(tid, path_addr)
        if not path and flags & AT_EMPTY_PATH:
            return CONTINUE  # on the descriptor itself: no lookup
        t = self.target(tid, dirfd, path)
        if t.sandbox:
            return self._kernel(t)
        reply = self._call(fp.STAT, tid, t, flags=flags & AT_SYMLINK_NOFOLLOW)
        if reply.kind == fp.REDIRECT:
            return self._redirected(t)
        raw = reply.data
        if len(raw) != STAT_SIZE:
            raise OSError(errno.EIO, "short stat")
        ptrace_raw.write_memory(tid, buf, raw)
        return 0

    def _statx(self, tid: int, a: tuple[int, ...], _id: int) -> Any:
        dirfd, flags, mask, buf = signed32(a[0]), a[2], a[3], a[4]
        path = self._read(tid, a[1])
        if not path and flags & AT_EMPTY_PATH:
            return CONTINUE
        t = self.target(tid, dirfd, path)
        if t.sandbox:
            return self._kernel(t)
        reply = self._call(fp.STATX, tid, t, flags=flags, arg1=mask)
        if reply.kind == fp.REDIRECT:
            return self._redirected(t)
        ptrace_raw.write_memory(tid, buf, reply.data[:STATX_SIZE])
        return 0

    def _access(self, tid: int, dirfd: int, address: int, mode: int, flags: int) -> Any:
        t = self.target(tid, dirfd, self._read(tid, address))
        if t.sandbox:
            return self._kernel(t)
        creds = self._creds(tid)
        who = creds.fs if flags & AT_EACCESS else creds.real
        reply = self._call(
            fp.ACCESS, tid, t, creds=who, mode=mode, flags=flags | AT_EACCESS
        )
        if reply.kind == fp.REDIRECT:
            return self._redirected(t)
        return 0

    def _readlink(self, tid: int, dirfd: int, address: int, buf: int, size: int) -> Any:
        if signed32(size) <= 0:
            raise OSError(errno.EINVAL, "buffer size")
        t = self.target(tid, dirfd, self._read(tid, address))
        if t.sandbox:
            answer = self._proc_link(tid, t.path) if t.as_made else None
            if answer is None:
                return self._kernel(t)
        else:
            reply = self._call(fp.READLINK, tid, t)
            if reply.kind == fp.REDIRECT:
                return self._redirected(t)
            answer = reply.data
        data = answer[: min(size, 1 << 16)]
        ptrace_raw.write_memory(tid, buf, data)
        return len(data)

    def _proc_link(self, tid: int, path: bytes) -> bytes | None:
        """Return the container's view of /proc/PID/exe and /proc/PID/cwd, or None."""
        parts = path.split(b"/")
        if len(parts) != 4 or parts[1] != b"proc" or parts[3] not in (b"exe", b"cwd"):
            return None
        who = parts[2]
        tgid = self.tgids.get(tid) or self._learn(tid)
        own = self.own_tgids.get(tgid, tgid)
        if who != b"self" and who != b"%d" % own:
            return None  # another process's: the kernel checks the caller may look
        proc = self._process(tid)
        if parts[3] == b"cwd":
            return self._cwd(tid, proc)
        return proc.exe or None

    def _simple(self, op: int, tid: int, dirfd: int, address: int, **kw: Any) -> Any:
        t = self.target(tid, dirfd, self._read(tid, address))
        if t.sandbox:
            return self._kernel(t)
        reply = self._call(op, tid, t, **kw)
        if reply.kind == fp.REDIRECT:
            return self._redirected(t)
        return reply.value

    def _mknod(self, tid: int, dirfd: int, address: int, mode: int, dev: int) -> Any:
        if stat.S_IFMT(mode) in (stat.S_IFCHR, stat.S_IFBLK):
            raise OSError(errno.EPERM, "no device nodes")
        return self._simple(fp.MKNOD, tid, dirfd, address, mode=mode, arg1=dev)

    def _two(
        self, op: int, tid: int, dirfd1: int, a1: int, dirfd2: int, a2: int, flags: int
    ) -> Any:
        first = self.target(tid, dirfd1, self._read(tid, a1))
        try:
            second = self.target(tid, dirfd2, self._read(tid, a2))
        except BaseException:
            first.close()
            raise
        if first.sandbox and second.sandbox and first.as_made and second.as_made:
            return CONTINUE
        if first.sandbox or second.sandbox:
            first.close()
            second.close()
            raise OSError(errno.EXDEV, "across mounts")
        creds = self._creds(tid).fs
        try:
            reply = self.client.call(
                op, creds, first.path, second.path, flags=flags,
                fds=(first.base, second.base, -1),
            )  # fmt: skip
        finally:
            first.close()
            second.close()
        _raise_error(reply)
        if reply.kind == fp.REDIRECT:
            raise OSError(errno.EXDEV, "across mounts")
        return 0

    def _symlink(self, tid: int, target_addr: int, dirfd: int, address: int) -> Any:
        content = self._read(tid, target_addr)
        t = self.target(tid, dirfd, self._read(tid, address))
        if t.sandbox:
            return self._kernel(t)
        reply = self._call(fp.SYMLINK, tid, t, data=content)
        if reply.kind == fp.REDIRECT:
            return self._redirected(t)
        return 0

    def _chown(
        self, tid: int, dirfd: int, address: int, uid: int, gid: int, flags: int
    ) -> Any:
        path = self._read(tid, address)
        if not path and flags & AT_EMPTY_PATH:
            return CONTINUE
        return self._simple(
            fp.CHOWN, tid, dirfd, address, arg1=uid & 0xFFFFFFFF,
            arg2=gid & 0xFFFFFFFF, flags=flags & AT_SYMLINK_NOFOLLOW,
        )  # fmt: skip

    def _utimensat(self, tid: int, a: tuple[int, ...], _id: int) -> Any:
        dirfd, path_addr, times, flags = signed32(a[0]), a[1], a[2], a[3]
        if path_addr == 0:
            return CONTINUE  # futimens: on the descriptor itself
        path = self._read(tid, path_addr)
        if not path and flags & AT_EMPTY_PATH:
            return CONTINUE
        data = ptrace_raw.read_memory(tid, times, 32) if times else b""
        return self._simple(
            fp.UTIMENS, tid, dirfd, path_addr, data=data,
            flags=flags & AT_SYMLINK_NOFOLLOW,
        )  # fmt: skip

    def _utimes(self, tid: int, dirfd: int, address: int, times: int, size: int) -> Any:
        """utime (two time_t) and utimes (two struct timeval) as utimensat."""
        data = b""
        if times:
            raw = ptrace_raw.read_memory(tid, times, 2 * size)
            if size == 8:
                a, m = struct.unpack("<qq", raw)
                data = struct.pack("<qqqq", a, 0, m, 0)
            else:
                a, au, m, mu = struct.unpack("<qqqq", raw)
                data = struct.pack("<qqqq", a, au * 1000, m, mu * 1000)
        return self._simple(fp.UTIMENS, tid, dirfd, address, data=data)

    def _statfs(self, tid: int, a: tuple[int, ...], _id: int) -> Any:
        t = self.target(tid, AT_FDCWD, self._read(tid, a[0]))
        if t.sandbox:
            return self._kernel(t)
        reply = self._call(fp.STATFS, tid, t)
        if reply.kind == fp.REDIRECT:
            return self._redirected(t)
        ptrace_raw.write_memory(tid, a[1], reply.data[:STATFS_SIZE])
        return 0

    def _chdir(self, tid: int, address: int) -> Any:
        t = self.target(tid, AT_FDCWD, self._read(tid, address))
        proc = self._process(tid)
        if t.sandbox:
            result = self._kernel(t)
            # The kernel's result is not seen, so its cwd is read when needed.
            proc.cwd_from_kernel = True
            return result
        as_made = t.as_made
        reply = self._call(fp.CHDIR, tid, t)
        if reply.kind == fp.REDIRECT:
            # NOTE: a working directory reached through a symlink into a sandbox
            # mount is refused.
            raise OSError(errno.EXDEV, "through a symlink into a sandbox mount")
        canonical = reply.data or b"/"
        proc.cwd = canonical
        proc.cwd_from_kernel = False
        # The kernel follows into an empty directory of the same path on the
        # sandbox's root, so that relative paths stay the kernel's business.
        self._make_dirs(canonical)
        if as_made and os.path.normpath(t.path) == canonical:
            proc.kernel_cwd = canonical
            return CONTINUE
        return 0

    def _fchdir(self, tid: int, fd: int) -> Any:
        copy = self._fetch_fd(tid, fd)
        proc = self._process(tid)
        if os.fstat(copy).st_dev in self.sandbox_devs:
            os.close(copy)
            proc.cwd_from_kernel = True
            return CONTINUE
        reply = self._call(fp.CHDIR, tid, Target(False, b"", base=copy))
        proc.cwd = reply.data or b"/"
        proc.cwd_from_kernel = False
        return 0

    def _cwd(self, tid: int, proc: Process) -> bytes:
        """Return the working directory of TID, read from the kernel while it is the kernel's."""
        if proc.cwd_from_kernel:
            try:
                path = os.readlink(f"/proc/{tid}/cwd").encode()
            except OSError:
                return proc.cwd
            proc.cwd = proc.kernel_cwd = path
        return proc.cwd

    def _make_dirs(self, path: bytes) -> None:
        """Create PATH's directories on the sandbox's root, through the writable clone."""
        fd = os.dup(self.scratch)
        try:
            for name in [p for p in path.split(b"/") if p]:
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                next_fd = os.open(
                    name,
                    os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                    dir_fd=fd,
                )
                os.close(fd)
                fd = next_fd
        finally:
            os.close(fd)

    def _getcwd(self, tid: int, a: tuple[int, ...], _id: int) -> Any:
        data = self._cwd(tid, self._process(tid)) + b"\0"
        if len(data) > a[1]:
            raise OSError(errno.ERANGE, "buffer too small")
        ptrace_raw.write_memory(tid, a[0], data)
        return len(data)

    def _xattr_target(self, tid: int, address: int) -> Target:
        t = self.target(tid, AT_FDCWD, self._read(tid, address))
        if t.sandbox:
            self._kernel(t)  # raises unless the kernel may run it as made
            raise _LeaveToKernel
        return t

    def _getxattr_handler(self, flags: int) -> Callable[..., Any]:
        def handler(tid: int, a: tuple[int, ...], _id: int) -> Any:
            t = self._xattr_target(tid, a[0])
            name = self._read(tid, a[1])
            reply = self._call(fp.GETXATTR, tid, t, data=name, flags=flags)
            return _fill(tid, a[2], a[3], reply.data)

        return handler

    def _listxattr_handler(self, flags: int) -> Callable[..., Any]:
        def handler(tid: int, a: tuple[int, ...], _id: int) -> Any:
            t = self._xattr_target(tid, a[0])
            reply = self._call(fp.LISTXATTR, tid, t, flags=flags)
            return _fill(tid, a[1], a[2], reply.data)

        return handler

    def _setxattr_handler(self, flags: int) -> Callable[..., Any]:
        def handler(tid: int, a: tuple[int, ...], _id: int) -> Any:
            t = self._xattr_target(tid, a[0])
            name = self._read(tid, a[1])
            if a[3] > XATTR_SIZE_MAX:
                raise OSError(errno.E2BIG, "attribute value too large")
            value = ptrace_raw.read_memory(tid, a[2], a[3]) if a[3] else b""
            self._call(
                fp.SETXATTR, tid, t, data=name + b"\0" + value, arg1=a[4], flags=flags
            )
            return 0

        return handler

    def _removexattr_handler(self, flags: int) -> Callable[..., Any]:
        def handler(tid: int, a: tuple[int, ...], _id: int) -> Any:
            t = self._xattr_target(tid, a[0])
            name = self._read(tid, a[1])
            self._call(fp.REMOVEXATTR, tid, t, data=name, flags=flags)
            return 0

        return handler

    def _inotify(self, tid: int, a: tuple[int, ...], _id: int) -> Any:
        t = self.target(tid, AT_FDCWD, self._read(tid, a[1]))
        if t.sandbox:
            return self._kernel(t)
        watcher = self._fetch_fd(tid, signed32(a[0]))
        try:
            creds = self._creds(tid).fs
            reply = self.client.call(
                fp.INOTIFY, creds, t.path, arg1=a[2], fds=(t.base, -1, watcher)
            )
        finally:
            t.close()
            os.close(watcher)
        _raise_error(reply)
        return reply.value

    def _identity(self, tid: int, a: tuple[int, ...], _id: int) -> Any:
        tgid = self.tgids.get(tid, tid)
        for other in [t for t, g in self.tgids.items() if g == tgid]:
            self.creds.pop(other, None)
        self.creds.pop(tid, None)
        return CONTINUE

    # --- sockets with a path ----------------------------------------------------------

    def unix_address(
        self, tid: int, args: tuple[int, ...]
    ) -> tuple[bytes, bytes] | None:
        """For bind or connect: the raw address and its path, if it names a served file.

        None means the kernel may run the call as made: another family, an
        abstract or unnamed address, or a path in one of the sandbox's mounts.
        """
        address, length = args[1], signed32(args[2])
        if not address or not 2 < length <= SOCKADDR_UN_SIZE:
            return None
        raw = ptrace_raw.read_memory(tid, address, length)
        if len(raw) < 3 or struct.unpack_from("<H", raw)[0] != socket.AF_UNIX:
            return None
        path = raw[2:].split(b"\0", 1)[0]
        if not path:
            return None  # abstract or unnamed
        t = self.target(tid, AT_FDCWD, path)
        if t.sandbox:
            self._kernel(t)  # raises unless the kernel may run it as made
            return None
        t.close()
        return raw, path

    def unix_socket(self, tid: int, nr: int, fd: int, path: bytes) -> int:
        """Bind or connect TID's socket FD to PATH through the file server."""
        t = self.target(tid, AT_FDCWD, path)
        if t.sandbox:
            t.close()
            raise OSError(errno.EXDEV, "through a symlink into a sandbox mount")
        sock = self._fetch_fd(tid, fd)
        op = fp.BIND if nr == number("bind") else fp.CONNECT
        try:
            reply = self.client.call(
                op, self._creds(tid).fs, t.path, fds=(t.base, -1, sock)
            )
        finally:
            t.close()
            os.close(sock)
        _raise_error(reply)
        if reply.kind == fp.REDIRECT:
            raise OSError(errno.EXDEV, "through a symlink into a sandbox mount")
        return 0

    # --- execve --------------------------------------------------------------------

    def prepare_exec(self, tid: int, regs: Any) -> bool:
        """Point a stopped execve or execveat of TID at a copy in the sandbox.

        Changes REGS (the caller writes them back); returns False when the call
        may run as made. Raises OSError with the errno the call fails with.
        """
        args = regs.syscall_args()
        if regs.syscall_nr() == number("execve"):
            dirfd, path_addr, argv, envp, flags = AT_FDCWD, args[0], args[1], args[2], 0
        else:
            dirfd, path_addr, argv, envp, flags = (signed32(args[0]), *args[1:5])
        # Not through self._read, whose memo belongs to the listener thread: an
        # entry made here would outlive the call and give a stale path to the
        # next call that reuses the buffer, as execvp does along PATH.
        path = ptrace_raw.read_string(tid, path_addr)
        if not path:
            # NOTE: fexecve (an empty path with AT_EMPTY_PATH) is not served yet.
            raise OSError(
                errno.ENOENT if not flags & AT_EMPTY_PATH else errno.ENOSYS, ""
            )
        t = self.target(tid, dirfd, path)
        if t.sandbox:
            if t.as_made:
                return False
            raise OSError(errno.EXDEV, "through a symlink into a sandbox mount")
        self.on_exec(tid)
        creds = self._creds(tid).fs
        prefix: list[bytes] = []  # interpreter arguments that replace argv[0]
        script = path
        exe = b""
        for _ in range(MAX_INTERPRETER_DEPTH + 1):
            reply = self._call(fp.EXEC, tid, t, creds=creds)
            if reply.kind == fp.REDIRECT or reply.fd < 0:
                raise OSError(errno.EACCES, "not a program of the container")
            try:
                head = os.pread(reply.fd, 256, 0)
                line = _shebang(head)
                if line is None:
                    copy = self._copy_program(
                        reply.fd, reply.data, creds, head, _program_name(path),
                        nosuid=bool(reply.value & fp.EXEC_NOSUID),
                    )  # fmt: skip
                    exe = reply.data[STAT_SIZE:]
                    break
            finally:
                os.close(reply.fd)
            interpreter, argument = line
            prefix = (
                [interpreter] + ([argument] if argument else []) + [script] + prefix[1:]
            )
            script = interpreter
            t = self.target(tid, AT_FDCWD, interpreter)
            if t.sandbox:
                raise OSError(errno.ENOENT, "interpreter in a sandbox mount")
        else:
            raise OSError(errno.ELOOP, "too many interpreters")
        self._write_exec(tid, regs, copy, argv, envp, prefix)
        self._process(tid).exe = exe
        return True

    def _copy_program(
        self, fd: int, raw_stat: bytes, creds: fp.Credentials, head: bytes, name: bytes,
        nosuid: bool,
    ) -> bytes:  # fmt: skip
        """Return the sandbox path of a copy of FD, made once per file version."""
        info = struct.unpack_from("<QQQIII", raw_stat)
        dev, ino, mode, uid, gid = info[0], info[1], info[3], info[4], info[5]
        size, mtime_s, mtime_ns = struct.unpack_from("<q", raw_stat, 48)[0], *struct.unpack_from("<QQ", raw_stat, 88)  # fmt: skip
        key = (dev, ino, size, mtime_s, mtime_ns, mode)
        if head[:4] == b"\x7fELF":
            interpreter = _elf_interpreter(fd, head)
            if interpreter is not None:
                self._provide_interpreter(interpreter, creds)
        key = (*key, nosuid)
        path = self.copies.pop(key, None)
        if path is None:
            # The caller passed the permission checks; the copy only has to run.
            # Set-id bits survive only where the copy keeps the owner, root, and
            # the program's mount allows them.
            keep = 0
            if uid == 0 and not nosuid:
                keep |= stat.S_ISUID
            if gid == 0 and not nosuid:
                keep |= stat.S_ISGID
            directory = EXEC_DIR + b"/" + os.urandom(8).hex().encode()
            os.mkdir(_relative(directory), 0o711, dir_fd=self.scratch)
            path = directory + b"/" + name
            # Readable only if the original is readable by all: the copy's owner
            # is root, and an exec-only program must stay unreadable.
            readable = 0o444 if mode & 0o004 else 0
            _copy_file(fd, self.scratch, path, 0o111 | readable | (mode & keep), size)
            self.copy_bytes += size
            self.copy_sizes[path] = size
        self.copies[key] = path  # now the most recently used
        self._evict_copies(keep=path)
        # The kernel names a process after the file it runs, so each name the
        # program is run by gets a link of that name.
        named = os.path.dirname(path) + b"/" + name
        if not _exists(self.scratch, named):
            os.link(
                _relative(path), _relative(named),
                src_dir_fd=self.scratch, dst_dir_fd=self.scratch,
            )  # fmt: skip
        return named

    def _evict_copies(self, keep: bytes) -> None:
        """Remove the least recently used copies beyond COPY_BUDGET bytes.

        A running program keeps its copy's pages; a later exec copies again.
        """
        while self.copy_bytes > COPY_BUDGET and len(self.copies) > 1:
            oldest_key = next(iter(self.copies))
            path = self.copies[oldest_key]
            if path == keep:
                break
            del self.copies[oldest_key]
            self.copy_bytes -= self.copy_sizes.pop(path, 0)
            directory = _relative(os.path.dirname(path))
            try:
                listing = os.open(
                    directory, os.O_RDONLY | os.O_DIRECTORY, dir_fd=self.scratch
                )
                try:
                    names = os.listdir(listing)
                finally:
                    os.close(listing)
                for name in names:
                    os.unlink(directory + b"/" + os.fsencode(name), dir_fd=self.scratch)
                os.rmdir(directory, dir_fd=self.scratch)
            except OSError:
                pass

    def _provide_interpreter(self, interpreter: bytes, creds: fp.Credentials) -> None:
        """Make the ELF interpreter exist at its own path in the sandbox's tmpfs.

        The path must be plain, because the gofer follows the image's symlinks
        and the sandbox's root has none. A path with "..", "." or a doubled
        slash could name another file there than in the image, such as a
        program copy.
        """
        if clean(interpreter) != interpreter or interpreter.startswith(b"/.stockade/"):
            raise OSError(errno.ENOEXEC, "ELF interpreter path is not plain")
        reply = self.client.call(fp.EXEC, creds, interpreter)
        if reply.kind != fp.OK or reply.fd < 0:
            return  # the kernel then fails the exec with ENOENT, as it would
        try:
            raw = reply.data
            stamp = (
                struct.unpack_from("<QQ", raw, 0)
                + struct.unpack_from("<q", raw, 48)
                + struct.unpack_from("<QQ", raw, 88)
            )
            if self.interpreters.get(interpreter) == stamp and _exists(
                self.scratch, interpreter
            ):
                return
            size = struct.unpack_from("<q", raw, 48)[0]
            self._make_dirs(os.path.dirname(interpreter))
            temporary = interpreter + b".stockade-new"
            _copy_file(reply.fd, self.scratch, temporary, 0o755, size)
            os.rename(
                _relative(temporary), _relative(interpreter),
                src_dir_fd=self.scratch, dst_dir_fd=self.scratch,
            )  # fmt: skip
            self.interpreters[interpreter] = stamp
        finally:
            os.close(reply.fd)

    def _write_exec(
        self,
        tid: int,
        regs: Any,
        copy: bytes,
        argv: int,
        envp: int,
        prefix: list[bytes],
    ) -> None:
        """Write the copy's path (and a script's new argv) below the stack pointer."""
        strings = [copy] + prefix
        blob = bytearray()
        offsets = []
        for item in strings:
            offsets.append(len(blob))
            blob += item + b"\0"
        while len(blob) % 8:
            blob += b"\0"
        vector_offset = len(blob)
        old_args: list[int] = []
        if prefix:
            old_args = _read_vector(tid, argv)[1:]
            count = len(prefix) + len(old_args) + 1
            blob += bytes(8 * count)
        base = (regs.rsp - SCRATCH_BELOW_SP - len(blob)) & ~0xF
        if prefix:
            pointers = (
                [base + offsets[i + 1] for i in range(len(prefix))] + old_args + [0]
            )
            struct.pack_into(f"<{len(pointers)}Q", blob, vector_offset, *pointers)
        ptrace_raw.write_memory(tid, base, bytes(blob))
        regs.orig_rax = number("execve")
        regs.rdi = base
        regs.rsi = base + vector_offset if prefix else argv
        regs.rdx = envp


def _raise_error(reply: fp.Reply) -> None:
    """Raise the errno of an ERROR reply as OSError."""
    if reply.kind == fp.ERROR:
        raise OSError(reply.value, os.strerror(reply.value))


def _unserved(tid: int, args: tuple[int, ...], _id: int) -> Any:
    raise OSError(errno.ENOSYS, "not served in the gofer mode")


def _program_name(path: bytes) -> bytes:
    """Return the name the kernel would give a process that runs PATH."""
    name = path.rstrip(b"/").rpartition(b"/")[2]
    return name if name not in (b"", b".", b"..") else b"program"


def _reply_quietly(listener: notify.Listener, notification_id: int, error: int) -> None:
    try:
        listener.reply(notification_id, error=error)
    except Exception:  # noqa: BLE001
        pass


def _fill(tid: int, buf: int, size: int, data: bytes) -> int:
    """Complete a size-probing call: the length for size 0, ERANGE if too small."""
    if size == 0:
        return len(data)
    if len(data) > size:
        raise OSError(errno.ERANGE, "buffer too small")
    ptrace_raw.write_memory(tid, buf, data)
    return len(data)


def _relative(path: bytes) -> bytes:
    """PATH on the sandbox's root, relative to a descriptor of that root."""
    return path.lstrip(b"/") or b"."


def _exists(root: int, path: bytes) -> bool:
    try:
        os.stat(_relative(path), dir_fd=root, follow_symlinks=False)
    except OSError:
        return False
    return True


def _shebang(head: bytes) -> tuple[bytes, bytes] | None:
    """Split a "#!" line into the interpreter and its one optional argument."""
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        raise OSError(errno.ENOEXEC, "empty #! line")
    interpreter, _, argument = line.replace(b"\t", b" ").partition(b" ")
    return interpreter, argument.strip(b" ")


def _elf_interpreter(fd: int, head: bytes) -> bytes | None:
    if len(head) < 64 or head[4] != 2:  # ELFCLASS64 only
        return None
    phoff = struct.unpack_from("<Q", head, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    table = os.pread(fd, phentsize * min(phnum, 64), phoff)
    for index in range(len(table) // max(phentsize, 1)):
        entry = table[index * phentsize : (index + 1) * phentsize]
        if len(entry) >= 40 and struct.unpack_from("<I", entry, 0)[0] == 3:  # PT_INTERP
            offset, size = (
                struct.unpack_from("<Q", entry, 8)[0],
                struct.unpack_from("<Q", entry, 32)[0],
            )
            name = os.pread(fd, min(size, 4096), offset).rstrip(b"\0")
            return name if name.startswith(b"/") else None
    return None


def _copy_file(source: int, root: int, path: bytes, mode: int, size: int) -> None:
    """Copy SIZE bytes of SOURCE to a new file PATH under ROOT, then give it MODE."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    out = os.open(_relative(path), flags, 0o700, dir_fd=root)
    try:
        offset = 0
        while offset < size:
            sent = os.sendfile(out, source, offset, min(size - offset, 1 << 24))
            if sent <= 0:
                break
            offset += sent
        os.fchmod(out, mode)
    finally:
        os.close(out)


def _read_vector(tid: int, address: int) -> list[int]:
    """Return the pointers of a NULL-terminated argv array in TID's memory."""
    if not address:
        return []
    pointers: list[int] = []
    while len(pointers) < 1 << 16:
        chunk = ptrace_raw.read_memory(tid, address + 8 * len(pointers), 512)
        for (value,) in struct.iter_unpack("<Q", chunk[: len(chunk) - len(chunk) % 8]):
            if value == 0:
                return pointers
            pointers.append(value)
        if len(chunk) < 512:
            break
    raise OSError(errno.EFAULT, "argv")


def kinds_with_paths() -> frozenset[int]:
    """Return every call with a path argument, for tests that check the coverage."""
    return frozenset(
        entry.nr for entry in SYSCALLS.values() if ArgKind.PATH in entry.args
    )

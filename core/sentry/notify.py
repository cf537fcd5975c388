"""Seccomp user notification: the kernel hands a blocked call to the sentry.

A filter action of SECCOMP_RET_USER_NOTIF parks the calling thread in the
kernel and queues a notification on a listener descriptor. The sentry reads
the notification, performs the call itself (or has the gofer perform it), and sends
back the result. SECCOMP_IOCTL_NOTIF_ADDFD installs a descriptor in the
caller's table; with SECCOMP_ADDFD_FLAG_SEND it also completes the call with
that descriptor's number, so an open returns a file that the gofer opened.

Neither libseccomp binding exposes ADDFD, so every ioctl here is raw.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct

from .. import linux

# _IOWR('!', 0, struct seccomp_notif) and friends from linux/seccomp.h.
IOCTL_RECV = 0xC0502100
IOCTL_SEND = 0xC0182101
IOCTL_ID_VALID = 0x40082102
IOCTL_ADDFD = 0x40182103
IOCTL_SET_FLAGS = 0x40082104  # _IOW('!', 4, __u64), Linux 6.6
FD_SYNC_WAKE_UP = 1  # wake the sentry, then the caller, on the waker's CPU
FLAG_CONTINUE = 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE: let the kernel run the call
ADDFD_FLAG_SETFD = 1
ADDFD_FLAG_SEND = 2
SYS_PIDFD_GETFD = 438
LISTENER_FD = 1000  # where a new process leaves its listener for the sentry
NOTIF_SIZE = 80  # u64 id, u32 pid, u32 flags, struct seccomp_data (64 bytes)
_NOTIF = struct.Struct("<QIIiIQ6Q")
_RESP = struct.Struct("<QqiI")
_ADDFD = struct.Struct("<QIIII")

_ioctl = linux.libc.ioctl
_ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)
_ioctl.restype = ctypes.c_int


class Notification:
    """One call parked in the kernel: who made it, its number and its arguments."""

    __slots__ = ("id", "pid", "nr", "arch", "args")

    def __init__(self, raw: bytes) -> None:
        fields = _NOTIF.unpack(raw)
        self.id, self.pid = fields[0], fields[1]
        self.nr, self.arch = fields[3], fields[4]
        self.args: tuple[int, ...] = fields[6:12]


class Listener:
    """A listener descriptor and the buffers its ioctls reuse."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._recv = ctypes.create_string_buffer(NOTIF_SIZE)
        self._resp = ctypes.create_string_buffer(_RESP.size)
        self._addfd = ctypes.create_string_buffer(_ADDFD.size)
        self._id = ctypes.c_uint64()

    def wake_on_same_cpu(self) -> bool:
        """Ask for synchronous wake-ups: the caller and the sentry share a CPU.

        A call then costs no wake-up across CPUs, which on these VMs is most
        of its price. Older kernels refuse, and the listener works as before.
        """
        return _ioctl(self.fd, IOCTL_SET_FLAGS, FD_SYNC_WAKE_UP) == 0

    def let_all_run(self) -> None:
        """Let every call that arrives run as made, until the listener fails.

        For calls that the sentry mediates but nothing decides: the cheapest
        reply, with the buffers packed once and no object per call. Returns,
        closing the listener, once no process uses its filter any more.
        """
        recv, resp = self._recv, self._resp
        clear, ioctl, fd = ctypes.memset, _ioctl, self.fd
        get_id, put = struct.Struct("<Q").unpack_from, _RESP.pack_into
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        wait = poller.poll
        while True:
            events = wait()
            if not events or not events[0][1] & select.POLLIN:
                os.close(fd)  # POLLHUP: every process of the filter has exited
                return
            clear(recv, 0, NOTIF_SIZE)
            if ioctl(fd, IOCTL_RECV, recv) != 0:
                if ctypes.get_errno() in (errno.ENOENT, errno.EINTR):
                    continue
                return
            put(resp, 0, get_id(recv)[0], 0, 0, FLAG_CONTINUE)
            ioctl(fd, IOCTL_SEND, resp)

    def receive(self) -> Notification | None:
        """Return the next notification; None when its caller died meanwhile."""
        ctypes.memset(self._recv, 0, NOTIF_SIZE)  # the kernel insists on zeroes
        if _ioctl(self.fd, IOCTL_RECV, self._recv) != 0:
            err = ctypes.get_errno()
            if err in (errno.ENOENT, errno.EINTR):
                return None
            raise OSError(err, os.strerror(err), "seccomp notification")
        return Notification(self._recv.raw)

    def valid(self, notification_id: int) -> bool:
        """Return whether the call is still parked: its thread has not died since receive."""
        self._id.value = notification_id
        return _ioctl(self.fd, IOCTL_ID_VALID, ctypes.byref(self._id)) == 0

    def reply(self, notification_id: int, value: int = 0, error: int = 0) -> None:
        """Complete the call with VALUE, or fail it with the positive errno ERROR."""
        _RESP.pack_into(self._resp, 0, notification_id, value, -error, 0)
        _ioctl(self.fd, IOCTL_SEND, self._resp)  # ENOENT: the caller is gone

    def let_run(self, notification_id: int) -> None:
        """Let the kernel carry out the call as the application made it."""
        _RESP.pack_into(self._resp, 0, notification_id, 0, 0, FLAG_CONTINUE)
        _ioctl(self.fd, IOCTL_SEND, self._resp)

    def reply_fd(self, notification_id: int, fd: int, cloexec: bool) -> int:
        """Install FD in the caller, completing the call; return the number it got."""
        flags = os.O_CLOEXEC if cloexec else 0
        _ADDFD.pack_into(self._addfd, 0, notification_id, ADDFD_FLAG_SEND, fd, 0, flags)
        result = _ioctl(self.fd, IOCTL_ADDFD, self._addfd)
        if result < 0:
            err = ctypes.get_errno()
            if err != errno.ENOENT:
                self.reply(notification_id, error=err)  # EMFILE, say
            return -err
        return result


def take_listener(pid: int) -> Listener | None:
    """Copy the listener that process PID left at LISTENER_FD; None if there is none."""
    try:
        fd = copy_descriptor(pid, LISTENER_FD)
    except OSError:
        return None
    try:
        kind = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        kind = ""
    if kind != "anon_inode:seccomp notify":
        os.close(fd)
        return None
    listener = Listener(fd)
    listener.wake_on_same_cpu()
    return listener


def copy_descriptor(pid: int, target_fd: int) -> int:
    """Duplicate descriptor TARGET_FD of process PID (a thread-group leader) into this one."""
    pidfd = os.pidfd_open(pid)
    try:
        return pidfd_getfd(pidfd, target_fd)
    finally:
        os.close(pidfd)


def pidfd_getfd(pidfd: int, target_fd: int) -> int:
    """Duplicate descriptor TARGET_FD of the process behind PIDFD into this one."""
    result = linux.libc.syscall(
        ctypes.c_long(SYS_PIDFD_GETFD),
        ctypes.c_int(pidfd),
        ctypes.c_int(target_fd),
        ctypes.c_uint(0),
    )
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), f"descriptor {target_fd}")
    return result

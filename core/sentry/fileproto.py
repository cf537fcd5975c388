"""The file protocol between the sentry and a file server such as the gofer.

One SOCK_SEQPACKET message per request and one per reply; descriptors travel
as SCM_RIGHTS. docs/gofer.md describes every operation. The layout:

request  header (REQUEST), then NGROUPS u32 group ids, PATH1, PATH2, DATA.
         Descriptors named by FDMASK follow in SCM_RIGHTS, in bit order:
         bit 0 is the directory PATH1 is relative to, bit 1 the directory of
         PATH2, bit 2 an object the call acts on (a socket, an inotify fd).
reply    header (REPLY), then the payload. KIND gives the meaning of VALUE:
         OK (a result, perhaps with a payload or one descriptor), ERROR (a
         positive errno) or REDIRECT (the payload is a path that the sandbox
         itself owns, such as somewhere under /proc, to be resolved there).

Requests carry the caller's credentials: the server performs the call as
that user, with that umask and with those of the caller's file capabilities
that it holds itself.
"""

from __future__ import annotations

import array
import errno
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

VERSION = 1
MAX_MESSAGE = 16384  # a request never needs more than two PATH_MAX paths
MAX_GROUPS = 256
SPIN_NS = 500_000  # how long the sentry polls for a reply before it sleeps
REQUEST = struct.Struct("<HHIIIIIHHQQQHHH")
REPLY = struct.Struct("<HHq")
OK, ERROR, REDIRECT = 0, 1, 2
FD_BASE1, FD_BASE2, FD_OBJECT = 1, 2, 4

# Operations. The number is part of the protocol; never reuse one.
OPEN = 1  # flags, mode -> descriptor
STAT = 2  # flags (AT_SYMLINK_NOFOLLOW) -> struct stat
STATX = 3  # flags, arg1 = mask -> struct statx
ACCESS = 4  # mode, flags (AT_EACCESS, AT_SYMLINK_NOFOLLOW)
READLINK = 5  # -> target bytes
MKDIR = 6  # mode
MKNOD = 7  # mode, arg1 = device number (FIFOs and sockets only)
UNLINK = 8  # flags (AT_REMOVEDIR)
RENAME = 9  # path1 -> path2, flags (RENAME_*)
LINK = 10  # path1 -> path2, flags (AT_SYMLINK_FOLLOW)
SYMLINK = 11  # data = target, path1 = the new link
CHMOD = 12  # mode, flags (AT_SYMLINK_NOFOLLOW)
CHOWN = 13  # arg1 = uid, arg2 = gid (all ones: unchanged), flags
UTIMENS = 14  # data = two struct timespec or empty for now, flags
TRUNCATE = 15  # arg1 = length
STATFS = 16  # -> struct statfs
CHDIR = 17  # -> the canonical path of the directory
EXEC = 18  # -> descriptor opened for reading, after the exec permission checks
EXEC_NOSUID = 1  # in EXEC's reply value: the program's mount is nosuid
MKDIRS = 19  # mode; create missing parents too
GETXATTR = 20  # data = name, flags (AT_SYMLINK_NOFOLLOW) -> value
SETXATTR = 21  # data = name NUL value, arg1 = XATTR_CREATE/REPLACE, flags
LISTXATTR = 22  # flags -> names
REMOVEXATTR = 23  # data = name, flags
INOTIFY = 24  # object = inotify descriptor, arg1 = mask -> watch descriptor
BIND = 25  # object = AF_UNIX socket
CONNECT = 26  # object = AF_UNIX socket
COPY_UP = 27  # path1 = a tmpcopyup destination -> its tmpfs, as a detached mount
NAMES = {
    value: name
    for name, value in globals().items()
    if name.isupper() and isinstance(value, int) and 0 < value < 64
}


@dataclass(frozen=True, slots=True)
class Credentials:
    """The identity a request acts for: fs ids, groups, umask, effective capabilities."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    umask: int = 0o022
    caps: int = 0


ROOT = Credentials(0, 0, (), 0o022, (1 << 64) - 1)


@dataclass(slots=True)
class Reply:
    kind: int
    value: int
    data: bytes = b""
    fd: int = -1


class ServerGone(OSError):
    """The file server closed its end: every later call fails with EIO."""


class FileClient:
    """The sentry's end of the protocol. Thread safe: one call at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.gone = False
        self.on_gone: Any = None  # called once, when the server is found gone

    def call(
        self,
        op: int,
        creds: Credentials,
        path1: bytes = b"",
        path2: bytes = b"",
        *,
        flags: int = 0,
        mode: int = 0,
        arg1: int = 0,
        arg2: int = 0,
        data: bytes = b"",
        fds: tuple[int, int, int] = (-1, -1, -1),
    ) -> Reply:
        """Send one request and wait for its reply; raise ServerGone if the server died."""
        groups = creds.groups[:MAX_GROUPS]
        mask, passed = 0, []
        for bit, fd in zip((FD_BASE1, FD_BASE2, FD_OBJECT), fds):
            if fd >= 0:
                mask |= bit
                passed.append(fd)
        header = REQUEST.pack(
            VERSION, op, flags, mode, creds.uid, creds.gid, creds.umask,
            len(groups), mask, arg1 & (1 << 64) - 1, arg2 & (1 << 64) - 1,
            creds.caps & (1 << 64) - 1, len(path1), len(path2), len(data),
        )  # fmt: skip
        message = b"".join(
            (header, struct.pack(f"<{len(groups)}I", *groups), path1, path2, data)
        )
        if len(message) > MAX_MESSAGE:
            return Reply(ERROR, errno.ENAMETOOLONG)
        ancillary = []
        if passed:
            rights = array.array("i", passed).tobytes()
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)]
        with self.lock:
            if self.gone:
                raise ServerGone(errno.EIO, "the file server has exited")
            try:
                self.sock.sendmsg([message], ancillary)
                raw, cmsgs = self._receive()
            except OSError:
                raw, cmsgs = b"", []
            if len(raw) < REPLY.size:
                self.gone = True
                if self.on_gone is not None:
                    self.on_gone()
                raise ServerGone(errno.EIO, "the file server has exited")
        version, kind, value = REPLY.unpack_from(raw)
        received = received_fds(cmsgs)
        for extra in received[1:]:
            _close(extra)
        fd = received[0] if received else -1
        return Reply(kind, value, raw[REPLY.size :], fd)

    def _receive(self) -> tuple[bytes, list[Any]]:
        """Receive the reply: poll first, as a reply within microseconds is the rule."""
        space = socket.CMSG_SPACE(4 * 4)
        deadline = time.monotonic_ns() + SPIN_NS
        while time.monotonic_ns() < deadline:
            try:
                raw, cmsgs, _, _ = self.sock.recvmsg(
                    MAX_MESSAGE, space, socket.MSG_DONTWAIT
                )
                return raw, cmsgs
            except BlockingIOError:
                continue
        raw, cmsgs, _, _ = self.sock.recvmsg(MAX_MESSAGE, space)
        return raw, cmsgs


def received_fds(cmsgs: list[tuple[int, int, bytes]]) -> list[int]:
    """Return the descriptors that arrived as SCM_RIGHTS in CMSGS."""
    fds: list[int] = []
    for level, kind, payload in cmsgs:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(payload[: len(payload) - len(payload) % 4])
            fds.extend(received)
    return fds


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass

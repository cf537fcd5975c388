"""The gofer's request loop: every file operation of the application, done here.

The gofer runs in a mount namespace of its own whose root is the container's
rootfs, with the spec's bind mounts on it. The other mounts of the spec
(proc, sysfs, tmpfs, the sandbox's /dev) belong to the sandbox, so the gofer
puts an empty read-only tmpfs, a marker, at each of their destinations. A
lookup that ends on a marker, directly or through a symlink in the image,
gets the reply REDIRECT with the path for the sandbox to resolve in its own mounts.

Each path is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
from the root descriptor, and each change is made relative to the O_PATH
descriptor of the parent directory, so the last step is a single name the
kernel handles at once. Because the namespace's root is the rootfs, even a
symlink the kernel follows cannot leave it.
"""

from __future__ import annotations

import array
import ctypes
import errno
import fcntl
import os
import socket
import stat
import struct
import time
from typing import Any

from stockade import linux
from stockade.sentry import fileproto as fp

AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
STAT_SIZE, STATX_SIZE, STATFS_SIZE = 144, 256, 120
SYS_SETFSUID, SYS_SETFSGID = 122, 123
SYS_FCHOWNAT, SYS_UTIMENSAT, SYS_NEWFSTATAT = 260, 280, 262
SYS_RENAMEAT2, SYS_STATX, SYS_FACCESSAT2, SYS_FCHMODAT2 = 316, 332, 439, 452
# Errors that a marker on the way could explain: the marker is empty and read-only.
REDIRECTABLE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EROFS, errno.ELOOP})
MAX_SYMLINKS = 40
SPIN_NS = 200_000  # how long the gofer polls for the next request before it sleeps
# Capabilities the gofer keeps: the file capabilities it lends a caller that
# has them, and the two it needs to take on a caller's ids.
FILE_CAPS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 9)
ID_CAPS = (1 << 6) | (1 << 7)  # CAP_SETGID, CAP_SETUID
KEPT_CAPS = FILE_CAPS | ID_CAPS
OWN_RIGHTS = (0, 0, (), 0o022, FILE_CAPS)  # the gofer's own, in _become's form

libc = linux.libc


class Redirect(Exception):
    """The reply for a path that leads into a sandbox mount; PATH is its sandbox path."""

    def __init__(self, path: bytes) -> None:
        super().__init__(path)
        self.path = path


class Malformed(Exception):
    pass


def _sys(number: int, *args: Any) -> int:
    result = libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


class Request:
    __slots__ = ("op", "flags", "mode", "creds", "arg1", "arg2", "path1", "path2",
                 "data", "base1", "base2", "obj")  # fmt: skip

    def __init__(self, raw: bytes, fds: list[int]) -> None:
        if len(raw) < fp.REQUEST.size:
            raise Malformed("short request")
        (version, self.op, self.flags, self.mode, uid, gid, umask, ngroups, mask,
         self.arg1, self.arg2, caps, len1, len2, len_data) = fp.REQUEST.unpack_from(raw)  # fmt: skip
        if version != fp.VERSION:
            raise Malformed(f"protocol version {version}, expected {fp.VERSION}")
        if ngroups > fp.MAX_GROUPS:
            raise Malformed("too many groups")
        offset = fp.REQUEST.size
        groups = struct.unpack_from(f"<{ngroups}I", raw, offset)
        offset += 4 * ngroups
        if offset + len1 + len2 + len_data != len(raw):
            raise Malformed("lengths do not add up")
        self.path1 = raw[offset : offset + len1]
        self.path2 = raw[offset + len1 : offset + len1 + len2]
        self.data = raw[offset + len1 + len2 :]
        if b"\0" in self.path1 or b"\0" in self.path2:
            raise Malformed("NUL inside a path")
        self.creds = (uid, gid, groups, umask & 0o777, caps & FILE_CAPS)
        if not mask and not fds:  # the common case: paths only
            self.base1 = self.base2 = self.obj = -1
            return
        wanted = [bit for bit in (fp.FD_BASE1, fp.FD_BASE2, fp.FD_OBJECT) if mask & bit]
        if len(wanted) != len(fds) or mask & ~7:
            raise Malformed("descriptors do not match the mask")
        given = dict(zip(wanted, fds))
        self.base1 = given.get(fp.FD_BASE1, -1)
        self.base2 = given.get(fp.FD_BASE2, -1)
        self.obj = given.get(fp.FD_OBJECT, -1)


class Gofer:
    """The server of one socket; ROOT is an O_PATH descriptor of the namespace's root."""

    def __init__(
        self, root: int, markers: dict[int, bytes], copy_ups: dict[bytes, int] | None = None
    ) -> None:
        self.root = root
        self.markers = markers  # st_dev of each marker -> its destination
        # Each tmpcopyup destination -> its filled tmpfs, handed out once.
        self.copy_ups = copy_ups or {}
        self.current: tuple[Any, ...] | None = None
        self.handlers = {
            fp.OPEN: self.open, fp.STAT: self.stat, fp.STATX: self.statx,
            fp.ACCESS: self.access, fp.READLINK: self.readlink,
            fp.MKDIR: self.mkdir, fp.MKNOD: self.mknod, fp.UNLINK: self.unlink,
            fp.RENAME: self.rename, fp.LINK: self.link, fp.SYMLINK: self.symlink,
            fp.CHMOD: self.chmod, fp.CHOWN: self.chown, fp.UTIMENS: self.utimens,
            fp.TRUNCATE: self.truncate, fp.STATFS: self.statfs, fp.CHDIR: self.chdir,
            fp.EXEC: self.exec_open, fp.MKDIRS: self.mkdirs,
            fp.GETXATTR: self.getxattr, fp.SETXATTR: self.setxattr,
            fp.LISTXATTR: self.listxattr, fp.REMOVEXATTR: self.removexattr,
            fp.INOTIFY: self.inotify, fp.BIND: self.bind, fp.CONNECT: self.connect,
            fp.COPY_UP: self.copy_up,
        }  # fmt: skip

    # --- the loop -------------------------------------------------------------

    def serve(self, sock: socket.socket) -> None:
        """Serve requests until the sandbox closes its end."""
        space = socket.CMSG_SPACE(4 * 4)
        while True:
            try:
                raw, cmsgs, msg_flags = _receive(sock, space)
            except InterruptedError:
                continue
            if not raw and not cmsgs:
                return
            fds = fp.received_fds(cmsgs)
            try:
                if len(raw) > fp.MAX_MESSAGE or msg_flags & (
                    socket.MSG_TRUNC | socket.MSG_CTRUNC
                ):
                    reply = (fp.ERROR, errno.EMSGSIZE, b"", -1)
                else:
                    reply = self.answer(raw, fds)
            finally:
                for fd in fds:
                    os.close(fd)
            kind, value, payload, fd = reply
            ancillary = []
            if fd >= 0:
                rights = array.array("i", [fd]).tobytes()
                ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)]
            try:
                sock.sendmsg(
                    [fp.REPLY.pack(fp.VERSION, kind, value) + payload], ancillary
                )
            except OSError:
                return
            finally:
                if fd >= 0:
                    os.close(fd)

    def answer(self, raw: bytes, fds: list[int]) -> tuple[int, int, bytes, int]:
        """Carry out one request and return its reply; errors become ERROR replies."""
        try:
            request = Request(raw, fds)
            handler = self.handlers.get(request.op)
            if handler is None:
                return fp.ERROR, errno.ENOSYS, b"", -1
            self._become(request.creds)
            result = handler(request)
        except Redirect as redirect:
            return fp.REDIRECT, 0, redirect.path, -1
        except Malformed:
            return fp.ERROR, errno.EPROTO, b"", -1
        except OSError as exc:
            return fp.ERROR, exc.errno or errno.EIO, b"", -1
        except Exception:  # a bug here must not take the container's files down
            return fp.ERROR, errno.EIO, b"", -1
        if isinstance(result, tuple):
            value, payload, fd = result
            return fp.OK, value, payload, fd
        return fp.OK, result or 0, b"", -1

    def _become(self, creds: tuple[Any, ...]) -> None:
        """Take on the caller's fs ids, groups, umask and file capabilities."""
        if creds == self.current:
            return
        uid, gid, groups, umask, caps = creds
        linux.capset(KEPT_CAPS, KEPT_CAPS, 0)
        _sys(SYS_SETFSUID, ctypes.c_uint(uid))
        _sys(SYS_SETFSGID, ctypes.c_uint(gid))
        os.setgroups(list(groups))
        os.umask(umask)
        linux.capset(caps & KEPT_CAPS & FILE_CAPS, KEPT_CAPS, 0)
        self.current = creds

    # --- resolution --------------------------------------------------------------

    def _absolute(self, path: bytes, base: int) -> bytes:
        if path.startswith(b"/"):
            return path
        if base < 0:
            return b"/" + path
        os.fchdir(base)
        directory = os.getcwdb()
        if not directory.startswith(b"/"):
            raise OSError(errno.EXDEV, "directory outside the container")
        return directory.rstrip(b"/") + b"/" + path

    def _open(self, path: bytes, flags: int, mode: int = 0) -> int:
        """Open PATH inside the root; raise Redirect if it lands on a marker."""
        try:
            fd = linux.openat2(self.root, path, flags, mode, RESOLVE)
        except OSError as exc:
            raise self._explain(exc, path) from None
        if self.markers:
            dev = os.fstat(fd).st_dev
            if dev in self.markers:
                os.close(fd)
                raise Redirect(self.markers[dev])
        return fd

    def _parent(self, path: bytes) -> tuple[int, bytes]:
        """Return an O_PATH descriptor of PATH's directory, and the last name."""
        stripped = path.rstrip(b"/")
        if not stripped:
            return os.dup(self.root), b"."
        parent, _, name = stripped.rpartition(b"/")
        if len(stripped) != len(path):
            name += b"/"
        try:
            fd = self._open(parent or b"/", os.O_PATH | os.O_DIRECTORY)
        except Redirect as redirect:
            raise Redirect(redirect.path.rstrip(b"/") + b"/" + name) from None
        return fd, name

    def _explain(self, exc: OSError, path: bytes) -> BaseException:
        """Turn EXC into a Redirect when a marker on PATH's way caused it."""
        if exc.errno not in REDIRECTABLE or not self.markers:
            return exc
        target = self._find_redirect(path)
        return Redirect(target) if target is not None else exc

    def _find_redirect(self, path: bytes) -> bytes | None:
        parts = [p for p in path.split(b"/") if p and p != b"."]
        # The common miss, a name absent from an existing directory, costs two calls.
        if parts and b".." not in parts:
            try:
                parent = linux.openat2(
                    self.root, b"/".join(parts[:-1]) or b"/", os.O_PATH, 0, RESOLVE
                )
            except OSError:
                parent = -1
            if parent >= 0:
                try:
                    dev = os.fstat(parent).st_dev
                    if dev in self.markers:
                        return self.markers[dev] + b"/" + parts[-1]
                    info = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
                    if not stat.S_ISLNK(info.st_mode):
                        return None
                except OSError:
                    return None
                finally:
                    os.close(parent)
        return self._walk(parts)

    def _walk(self, parts: list[bytes]) -> bytes | None:
        """Resolve PARTS name by name, as the kernel would, watching for markers."""
        done: list[bytes] = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == b"..":
                if done:
                    done.pop()
                continue
            here = b"/" + b"/".join(done)
            try:
                fd = os.open(here, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                return None
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    hops += 1
                    if hops > MAX_SYMLINKS:
                        return None
                    target = os.readlink(name, dir_fd=fd)
                    if target.startswith(b"/"):
                        done = []
                    parts = [p for p in target.split(b"/") if p and p != b"."] + parts
                    continue
            except OSError:
                return None
            finally:
                os.close(fd)
            done.append(name)
            if info.st_dev in self.markers:
                rest = b"/".join(parts)
                return self.markers[info.st_dev] + (b"/" + rest if rest else b"")
        return None

    def _check_marker(self, raw_stat: bytes, offset: int = 0) -> None:
        dev = struct.unpack_from("<Q", raw_stat, offset)[0]
        if dev in self.markers:
            raise Redirect(self.markers[dev])

    # --- operations ----------------------------------------------------------------

    def open(self, r: Request) -> tuple[int, bytes, int]:
        path = self._absolute(r.path1, r.base1)
        flags = r.flags & ~os.O_CLOEXEC
        if flags & os.O_PATH:
            # The kernel will not install an O_PATH descriptor in the caller
            # (SECCOMP_IOCTL_NOTIF_ADDFD refuses one with EBADF), so the caller
            # gets a read-only descriptor of the same file. It serves as a base
            # for *at calls and for fstat.
            # NOTE: unlike O_PATH, this needs read permission, fails on a
            # symlink with O_NOFOLLOW (ELOOP), and F_GETFL shows O_RDONLY.
            path_flags = flags & (os.O_DIRECTORY | os.O_NOFOLLOW)
            return 0, b"", self._open(path, os.O_RDONLY | os.O_NONBLOCK | path_flags)
        plain = not flags & (os.O_PATH | os.O_DIRECTORY | os.O_NONBLOCK)
        # A FIFO would block the gofer until its other end opens: open every file
        # non-blocking, then give the caller back the blocking mode it asked for.
        fd = self._open(path, flags | (os.O_NONBLOCK if plain else 0), r.mode)
        if plain:
            # F_SETFL changes only the status flags, which are the caller's.
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        return 0, b"", fd

    def stat(self, r: Request) -> tuple[int, bytes, int]:
        buf = ctypes.create_string_buffer(STAT_SIZE)
        if not r.path1 and r.base1 >= 0:
            _sys(SYS_NEWFSTATAT, r.base1, b"", buf, AT_EMPTY_PATH)
            return 0, buf.raw, -1
        parent, name = self._parent(self._absolute(r.path1, r.base1))
        try:
            _sys(SYS_NEWFSTATAT, parent, name, buf, r.flags & AT_SYMLINK_NOFOLLOW)
        except OSError as exc:
            raise self._explain(exc, self._absolute(r.path1, r.base1)) from None
        finally:
            os.close(parent)
        self._check_marker(buf.raw)
        return 0, buf.raw, -1

    def statx(self, r: Request) -> tuple[int, bytes, int]:
        buf = ctypes.create_string_buffer(STATX_SIZE)
        flags = r.flags & ~AT_EMPTY_PATH
        if not r.path1 and r.base1 >= 0:
            _sys(
                SYS_STATX,
                r.base1,
                b"",
                flags | AT_EMPTY_PATH,
                ctypes.c_uint(r.arg1),
                buf,
            )
            return 0, buf.raw, -1
        path = self._absolute(r.path1, r.base1)
        parent, name = self._parent(path)
        try:
            _sys(SYS_STATX, parent, name, flags, ctypes.c_uint(r.arg1), buf)
        except OSError as exc:
            raise self._explain(exc, path) from None
        finally:
            os.close(parent)
        major, minor = struct.unpack_from("<II", buf.raw, 0x88)
        if os.makedev(major, minor) in self.markers:
            raise Redirect(self.markers[os.makedev(major, minor)])
        return 0, buf.raw, -1

    def access(self, r: Request) -> int:
        nofollow = os.O_NOFOLLOW if r.flags & AT_SYMLINK_NOFOLLOW else 0
        fd = self._open(self._absolute(r.path1, r.base1), os.O_PATH | nofollow)
        try:
            _sys(SYS_FACCESSAT2, fd, b"", r.mode & 7, AT_EMPTY_PATH | AT_EACCESS)
        finally:
            os.close(fd)
        return 0

    def readlink(self, r: Request) -> tuple[int, bytes, int]:
        path = self._absolute(r.path1, r.base1)
        parent, name = self._parent(path)
        try:
            target = os.readlink(name, dir_fd=parent)
        except OSError as exc:
            raise self._explain(exc, path) from None
        finally:
            os.close(parent)
        return len(target), target, -1

    def _at(self, r: Request, action: Any, path: bytes | None = None) -> int:
        """Run ACTION(parent_fd, name) on PATH (default PATH1 from BASE1)."""
        full = path if path is not None else self._absolute(r.path1, r.base1)
        parent, name = self._parent(full)
        try:
            action(parent, name)
        except OSError as exc:
            raise self._explain(exc, full) from None
        finally:
            os.close(parent)
        return 0

    def mkdir(self, r: Request) -> int:
        return self._at(r, lambda fd, name: os.mkdir(name, r.mode & 0o7777, dir_fd=fd))

    def mknod(self, r: Request) -> int:
        kind = stat.S_IFMT(r.mode)
        if kind in (stat.S_IFCHR, stat.S_IFBLK):
            raise OSError(errno.EPERM, "no device nodes")
        return self._at(r, lambda fd, name: os.mknod(name, r.mode, r.arg1, dir_fd=fd))

    def unlink(self, r: Request) -> int:
        if r.flags & AT_REMOVEDIR:
            return self._at(r, lambda fd, name: os.rmdir(name, dir_fd=fd))
        return self._at(r, lambda fd, name: os.unlink(name, dir_fd=fd))

    def _two(self, r: Request, action: Any) -> int:
        old = self._absolute(r.path1, r.base1)
        new = self._absolute(r.path2, r.base2)
        old_parent, old_name = self._parent(old)
        try:
            new_parent, new_name = self._parent(new)
        except Redirect:
            os.close(old_parent)
            raise OSError(errno.EXDEV, "across mounts") from None
        try:
            action(old_parent, old_name, new_parent, new_name)
        except OSError as exc:
            raise self._explain(exc, old) from None
        finally:
            os.close(old_parent)
            os.close(new_parent)
        return 0

    def rename(self, r: Request) -> int:
        def action(p1: int, n1: bytes, p2: int, n2: bytes) -> None:
            _sys(SYS_RENAMEAT2, p1, n1, p2, n2, ctypes.c_uint(r.flags))

        return self._two(r, action)

    def link(self, r: Request) -> int:
        follow = bool(r.flags & AT_SYMLINK_FOLLOW)

        def action(p1: int, n1: bytes, p2: int, n2: bytes) -> None:
            os.link(n1, n2, src_dir_fd=p1, dst_dir_fd=p2, follow_symlinks=follow)

        return self._two(r, action)

    def symlink(self, r: Request) -> int:
        return self._at(r, lambda fd, name: os.symlink(r.data, name, dir_fd=fd))

    def chmod(self, r: Request) -> int:
        flags = r.flags & AT_SYMLINK_NOFOLLOW
        return self._at(
            r, lambda fd, name: _sys(SYS_FCHMODAT2, fd, name, r.mode & 0o7777, flags)
        )

    def chown(self, r: Request) -> int:
        flags = r.flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
        uid, gid = (
            ctypes.c_uint(r.arg1 & 0xFFFFFFFF),
            ctypes.c_uint(r.arg2 & 0xFFFFFFFF),
        )
        if not r.path1 and r.base1 >= 0:
            _sys(SYS_FCHOWNAT, r.base1, b"", uid, gid, AT_EMPTY_PATH)
            return 0
        return self._at(
            r, lambda fd, name: _sys(SYS_FCHOWNAT, fd, name, uid, gid, flags)
        )

    def utimens(self, r: Request) -> int:
        times = None
        if r.data:
            if len(r.data) != 32:
                raise Malformed("times need two struct timespec")
            times = ctypes.create_string_buffer(r.data, 32)
        flags = r.flags & AT_SYMLINK_NOFOLLOW
        return self._at(r, lambda fd, name: _sys(SYS_UTIMENSAT, fd, name, times, flags))

    def truncate(self, r: Request) -> int:
        fd = self._open(self._absolute(r.path1, r.base1), os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.ftruncate(fd, r.arg1)
        finally:
            os.close(fd)
        return 0

    def statfs(self, r: Request) -> tuple[int, bytes, int]:
        fd = self._open(self._absolute(r.path1, r.base1), os.O_PATH)
        buf = ctypes.create_string_buffer(STATFS_SIZE)
        try:
            if libc.fstatfs(fd, buf) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
        finally:
            os.close(fd)
        return 0, buf.raw, -1

    def chdir(self, r: Request) -> tuple[int, bytes, int]:
        if not r.path1 and r.base1 >= 0:
            fd = os.dup(r.base1)
        else:
            fd = self._open(
                self._absolute(r.path1, r.base1), os.O_PATH | os.O_DIRECTORY
            )
        try:
            _sys(SYS_FACCESSAT2, fd, b"", os.X_OK, AT_EMPTY_PATH | AT_EACCESS)
            os.fchdir(fd)
            if self.markers and os.fstat(fd).st_dev in self.markers:
                raise Redirect(self.markers[os.fstat(fd).st_dev])
        finally:
            os.close(fd)
        directory = os.getcwdb()
        if not directory.startswith(b"/"):
            raise OSError(errno.ENOENT, "directory outside the container")
        return 0, directory, -1

    def exec_open(self, r: Request) -> tuple[int, bytes, int]:
        """Open a program for exec; reply with its stat, then its canonical path.

        The permission checks are the caller's. The descriptor is opened with
        the gofer's own rights, because the kernel runs a program that the
        caller may execute but not read.
        """
        path = self._absolute(r.path1, r.base1)
        checked = self._open(path, os.O_PATH)
        try:
            info = os.fstat(checked)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(errno.EACCES, "not a regular file")
            _sys(SYS_FACCESSAT2, checked, b"", os.X_OK, AT_EMPTY_PATH | AT_EACCESS)
            mount_flags = os.fstatvfs(checked).f_flag
            if mount_flags & os.ST_NOEXEC:
                raise OSError(errno.EACCES, "on a noexec mount")
            caller = self.current
            self._become(OWN_RIGHTS)
            try:
                fd = self._open(path, os.O_RDONLY | os.O_NONBLOCK)
            finally:
                self._become(caller)
        finally:
            os.close(checked)
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
                raise OSError(errno.EAGAIN, "the program changed while it was opened")
            buf = ctypes.create_string_buffer(STAT_SIZE)
            _sys(SYS_NEWFSTATAT, fd, b"", buf, AT_EMPTY_PATH)
            canonical = self._canonical(path)
        except BaseException:
            os.close(fd)
            raise
        nosuid = fp.EXEC_NOSUID if mount_flags & os.ST_NOSUID else 0
        return nosuid, buf.raw + canonical, fd

    def _canonical(self, path: bytes) -> bytes:
        """PATH with every symlink resolved, as /proc/PID/exe names a program."""
        for _ in range(MAX_SYMLINKS):
            parent, name = self._parent(path)
            try:
                target = os.readlink(name, dir_fd=parent)
            except OSError:
                os.fchdir(parent)
                return os.getcwdb().rstrip(b"/") + b"/" + name
            finally:
                os.close(parent)
            if not target.startswith(b"/"):
                target = path.rstrip(b"/").rpartition(b"/")[0] + b"/" + target
            path = target
        return path

    def mkdirs(self, r: Request) -> int:
        parts = [p for p in self._absolute(r.path1, r.base1).split(b"/") if p]
        for end in range(1, len(parts) + 1):
            try:
                self._at(
                    r,
                    lambda fd, name: os.mkdir(name, r.mode & 0o7777, dir_fd=fd),
                    b"/" + b"/".join(parts[:end]),
                )
            except FileExistsError:
                pass
        return 0

    def _in_parent(self, r: Request, action: Any) -> Any:
        """Run ACTION(name) with the parent as the working directory."""
        result: list[Any] = []

        def run(fd: int, name: bytes) -> None:
            os.fchdir(fd)
            result.append(action(name))

        self._at(r, run)
        return result[0]

    def getxattr(self, r: Request) -> tuple[int, bytes, int]:
        follow = not r.flags & AT_SYMLINK_NOFOLLOW
        value = self._in_parent(
            r, lambda name: os.getxattr(name, r.data, follow_symlinks=follow)
        )
        return len(value), value, -1

    def setxattr(self, r: Request) -> int:
        name, _, value = r.data.partition(b"\0")
        follow = not r.flags & AT_SYMLINK_NOFOLLOW
        self._in_parent(
            r,
            lambda path: os.setxattr(path, name, value, r.arg1, follow_symlinks=follow),
        )
        return 0

    def listxattr(self, r: Request) -> tuple[int, bytes, int]:
        follow = not r.flags & AT_SYMLINK_NOFOLLOW
        names = self._in_parent(
            r, lambda name: os.listxattr(name, follow_symlinks=follow)
        )
        payload = b"".join(n.encode(errors="surrogateescape") + b"\0" for n in names)
        return len(payload), payload, -1

    def removexattr(self, r: Request) -> int:
        follow = not r.flags & AT_SYMLINK_NOFOLLOW
        self._in_parent(
            r, lambda name: os.removexattr(name, r.data, follow_symlinks=follow)
        )
        return 0

    def inotify(self, r: Request) -> int:
        if r.obj < 0:
            raise Malformed("no inotify descriptor")
        add = libc.inotify_add_watch

        def action(name: bytes) -> int:
            result = add(r.obj, name, ctypes.c_uint32(r.arg1))
            if result < 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            return result

        return self._in_parent(r, action)

    def copy_up(self, r: Request) -> tuple[int, bytes, int]:
        fd = self.copy_ups.pop(r.path1, -1)
        if fd < 0:
            raise OSError(errno.ENOENT, "no tmpcopyup tmpfs there")
        return 0, b"", fd

    def _unix(self, r: Request, call: Any) -> int:
        if r.obj < 0:
            raise Malformed("no socket")

        def action(name: bytes) -> int:
            if len(name) > 107:
                raise OSError(errno.ENAMETOOLONG, "socket name too long")
            address = struct.pack("<H", socket.AF_UNIX) + name + b"\0"
            if call(r.obj, address, len(address)) < 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            return 0

        return self._in_parent(r, action)

    def bind(self, r: Request) -> int:
        return self._unix(r, libc.bind)

    def connect(self, r: Request) -> int:
        return self._unix(r, libc.connect)


def _receive(sock: socket.socket, space: int) -> tuple[bytes, list[Any], int]:
    """Receive the next request: poll briefly, since calls come in bursts, then wait.

    A wake-up across CPUs costs tens of microseconds on the VMs measured
    here, more than the request itself.
    """
    deadline = time.monotonic_ns() + SPIN_NS
    while time.monotonic_ns() < deadline:
        try:
            raw, cmsgs, flags, _ = sock.recvmsg(
                fp.MAX_MESSAGE + 1, space, socket.MSG_DONTWAIT
            )
            return raw, cmsgs, flags
        except BlockingIOError:
            continue
    raw, cmsgs, flags, _ = sock.recvmsg(fp.MAX_MESSAGE + 1, space)
    return raw, cmsgs, flags

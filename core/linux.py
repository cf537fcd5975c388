"""Thin ctypes bindings for the Linux system calls that Python 3.11 lacks.

Every wrapper raises OSError with the errno and the subject on failure, so a
caller can report which path or namespace failed.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from typing import Any

libc = ctypes.CDLL(None, use_errno=True)

# x86-64 system call numbers used through syscall(2).
SYS_PIVOT_ROOT = 155
SYS_OPENAT2 = 437
SYS_MOUNT_SETATTR = 442
SYS_PIDFD_OPEN = 434

# Namespace flags (linux/sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# Mount flags (linux/mount.h).
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

# openat2 resolve flags (linux/openat2.h).
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# mount_setattr (linux/mount.h).
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NODEV = 0x4

# prctl options.
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

libc.syscall.restype = ctypes.c_long
libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4


def _check(result: int, subject: str = "") -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), subject or None)
    return result


def _b(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return os.fsencode(value)


def unshare(flags: int) -> None:
    _check(libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    result = libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    _check(result, target)


def umount2(target: str, flags: int = 0) -> None:
    _check(libc.umount2(_b(target), flags), target)


def pivot_root(new_root: str, put_old: str) -> None:
    result = libc.syscall(
        ctypes.c_long(SYS_PIVOT_ROOT),
        ctypes.c_char_p(_b(new_root)),
        ctypes.c_char_p(_b(put_old)),
    )
    _check(result, new_root)


_OPEN_HOWS: dict[tuple[int, int, int], Any] = {}
OPENAT2_RETRIES = 16


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """Open PATH relative to DIRFD with openat2(2) resolve restrictions."""
    key = (flags, mode, resolve)
    how = _OPEN_HOWS.get(key)
    if how is None:
        if len(_OPEN_HOWS) > 256:
            _OPEN_HOWS.clear()
        packed = struct.pack("QQQ", flags | os.O_CLOEXEC, mode, resolve)
        how = _OPEN_HOWS[key] = ctypes.create_string_buffer(packed, len(packed))
    encoded = _b(path)
    for _ in range(OPENAT2_RETRIES):
        result = libc.syscall(SYS_OPENAT2, dirfd, encoded, how, 24)
        # EAGAIN: a mount or rename anywhere on the host raced a ".." step under
        # RESOLVE_IN_ROOT. The call is then safe to repeat (openat2(2)).
        if result >= 0 or ctypes.get_errno() != errno.EAGAIN:
            break
    return _check(result, path)


def mount_setattr(fd: int, attributes: int, recursive: bool = True) -> None:
    """Set ATTRIBUTES (MOUNT_ATTR_*) on the mount at FD and, by default, those below it."""
    attr = struct.pack("QQQQ", attributes, 0, 0, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    flags = 0x1000 | (AT_RECURSIVE if recursive else 0)  # AT_EMPTY_PATH
    result = libc.syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR),
        ctypes.c_int(fd),
        ctypes.c_char_p(b""),
        ctypes.c_uint(flags),
        buf,
        ctypes.c_size_t(len(attr)),
    )
    _check(result, "mount_setattr")


SYS_OPEN_TREE = 428
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC


def open_tree_clone(fd: int) -> int:
    """Return a descriptor of a detached copy of the mount at FD (not its submounts)."""
    result = libc.syscall(
        ctypes.c_long(SYS_OPEN_TREE),
        ctypes.c_int(fd),
        ctypes.c_char_p(b""),
        ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | 0x1000),  # AT_EMPTY_PATH
    )
    return _check(result, "open_tree")


SYS_MOVE_MOUNT = 429
MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH = 0x04, 0x40


def move_mount(tree_fd: int, target_fd: int) -> None:
    """Attach the detached mount TREE_FD on the directory that TARGET_FD names."""
    result = libc.syscall(
        ctypes.c_long(SYS_MOVE_MOUNT),
        ctypes.c_int(tree_fd),
        ctypes.c_char_p(b""),
        ctypes.c_int(target_fd),
        ctypes.c_char_p(b""),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
    )
    _check(result, "move_mount")


def mount_setattr_readonly(fd: int, recursive: bool = True) -> None:
    """Make the mount at FD (and, by default, every mount below it) read-only."""
    mount_setattr(fd, MOUNT_ATTR_RDONLY, recursive)


def prctl(
    option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0
) -> int:
    return _check(libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets from 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for index in (0, 1):
        shift = 32 * index
        data[index].effective = (effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(libc.capset(ctypes.byref(header), data), "capset")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(libc.sethostname(ctypes.c_char_p(raw), ctypes.c_size_t(len(raw))), name)


def setdomainname(name: str) -> None:
    raw = name.encode()
    result = libc.setdomainname(ctypes.c_char_p(raw), ctypes.c_size_t(len(raw)))
    _check(result, name)


def pidfd_open(pid: int) -> int:
    return _check(libc.syscall(ctypes.c_long(SYS_PIDFD_OPEN), pid, 0), f"pid {pid}")


def status_numbers(pid: int, key: str) -> list[int]:
    """Return the numbers on the KEY line of /proc/PID/status; empty if PID is gone."""
    prefix = key + ":"
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(prefix):
                    return [int(field) for field in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


def process_start_time(pid: int) -> int | None:
    """Return the start time of PID in clock ticks since boot, or None if gone.

    The pair (pid, start time) identifies a process even after its pid is reused.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain spaces or ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None
    return int(fields[19])


def wipe_environment_block() -> None:
    """Zero the environment strings that exec left on this process's stack.

    /proc/PID/environ reads them, and the runtime's environment may hold an
    engine's secrets. os.environ is a copy and keeps working.
    """
    try:
        with open("/proc/self/stat", "rb") as f:
            raw = f.read()
        fields = raw[raw.rindex(b")") + 2 :].split()
        # proc(5) numbers env_start and env_end 50 and 51; fields[0] is number 3.
        start, end = int(fields[47]), int(fields[48])
    except (OSError, ValueError, IndexError):
        return
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)


NS_GET_PARENT = 0xB702  # _IO(0xb7, 0x2), from linux/nsfs.h


def parent_pid_namespace(pid: int) -> int:
    """Return the inode of the parent of PID's PID namespace, or 0 if unknown.

    The host's own namespace has no parent, and the kernel reports EPERM for it.
    """
    try:
        fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        parent = fcntl.ioctl(fd, NS_GET_PARENT)
    except OSError:
        return 0
    finally:
        os.close(fd)
    try:
        return os.fstat(parent).st_ino
    finally:
        os.close(parent)


def pids_in_pid_namespace(pid: int) -> list[int]:
    """Return the host pids of the processes in PID's PID namespace, PID included.

    Processes in a namespace nested directly in it count too, so this finds an
    application that has a PID namespace of its own. Returns [] if PID is gone.
    """
    try:
        outer = os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return []
    inside = {outer: True}  # namespace inode -> whether it belongs
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            namespace = os.stat(f"/proc/{name}/ns/pid").st_ino
        except OSError:
            continue
        if namespace not in inside:
            inside[namespace] = parent_pid_namespace(int(name)) == outer
        if inside[namespace]:
            found.append(int(name))
    return sorted(found)

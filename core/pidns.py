"""The application's own PID namespace, nested in the sandbox's.

The sandbox process is PID 1 of the container's PID namespace. When the spec
requests a new PID namespace (a ``pid`` entry without a ``path``), the
platform forks the application's init into a second namespace nested in that
one. The init is PID 1 there, as under runc: ``echo $$`` prints 1, and a
signal it has no handler for does not end it, unless it is SIGKILL or SIGSTOP
from outside. The sandbox sees every application process by its pid in the
outer namespace, and the application sees neither the sandbox nor its helpers.

The first process forked into a new PID namespace becomes its PID 1, and the
namespace accepts no new process once that PID 1 has exited. So only the
init is forked while the forking thread has the new namespace for its
children, and the sandbox's later forks (hooks, helpers) go to its own.

The init also gets a mount namespace of its own: a copy of the sandbox's, with
a proc of the nested PID namespace over each proc mount of the spec. The
sandbox's own /proc, where it reads its tracees by their outer pids, stays
as it was.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from . import linux
from .providers import Container
from .rootfs import RESOLVE, make_readonly, mask_path, parse_options
from .spec import Spec


def requested(container: Container) -> bool:
    """Return whether the init gets a PID namespace of its own.

    It does when the spec requests a new PID namespace. A namespace joined by
    path (a pod's shared one, say) is shared with the sandbox instead.
    """
    return any(n.type == "pid" and not n.path for n in container.namespaces)


def fork_into_new_namespace() -> int:
    """Fork a child that is PID 1 of a new PID namespace; return as os.fork does.

    unshare(CLONE_NEWPID) changes only the calling thread's namespace for new
    children, so other threads are unaffected. The parent puts its own
    namespace back right after the fork.
    """
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    pid = -1
    try:
        linux.unshare(linux.CLONE_NEWPID)
        pid = os.fork()
    finally:
        if pid != 0:
            linux.setns(own, linux.CLONE_NEWPID)
        os.close(own)
    return pid


def open_namespaces(pid: int) -> tuple[int, int]:
    """Open the PID and mount namespaces of process PID; return the two descriptors."""
    pid_ns = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        mount_ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(pid_ns)
        raise
    return pid_ns, mount_ns


def enter_own_mounts(spec: Spec) -> None:
    """In the init: take a copy of the mount namespace with a proc of its own.

    Each proc mount of the spec gets a new proc of the caller's PID namespace
    on top, with the same options. The maskedPaths and readonlyPaths under
    it are then applied again, because the new proc covers the old masks.
    The caller must be single-threaded and still hold CAP_SYS_ADMIN.
    """
    linux.unshare(linux.CLONE_NEWNS)
    destinations = []
    for mount in spec.mounts:
        if mount.get("type") != "proc":
            continue
        destination = os.path.normpath(mount["destination"])
        _mount_proc(destination, mount.get("options") or [])
        destinations.append(destination)
    if not destinations:
        return
    linux_section = spec.linux
    for path in linux_section.get("maskedPaths") or []:
        if _under_any(path, destinations):
            mask_path(path)
    for path in linux_section.get("readonlyPaths") or []:
        if _under_any(path, destinations):
            make_readonly(path)


def _mount_proc(destination: str, options: list[str]) -> None:
    """Replace the proc at DESTINATION, resolved inside the root, with a new one.

    The new proc is mounted on top first: inside a user namespace the kernel
    mounts a proc only where a proc is already fully visible. The sandbox's
    masks do not hide it, because the kernel counts only locked mounts, and
    mounts made in the caller's own user namespace are not locked. A detached
    copy of the new proc then takes the place of both, so the sandbox's proc,
    and the masks on it, are gone from this mount namespace.
    """
    flags, _, data = parse_options(options)
    with _inside(destination):
        linux.mount("proc", ".", "proc", flags & ~linux.MS_REC, data or None)
    with _inside(destination) as fd:
        copy = linux.open_tree_clone(fd)
    try:
        for _ in range(2):  # the new proc, then the sandbox's beneath it
            with _inside(destination):
                linux.umount2(".", linux.MNT_DETACH)
        with _inside(destination) as fd:
            linux.move_mount(copy, fd)
    finally:
        os.close(copy)


@contextlib.contextmanager
def _inside(path: str) -> Iterator[int]:
    """Change into PATH, resolved inside the root as the spec's mounts are.

    Yields an O_PATH descriptor of it. Mounting on, or unmounting, "." then
    needs no /proc, which a spec may mount elsewhere or not at all.
    """
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = linux.openat2(root, path.lstrip("/") or ".", os.O_PATH, 0, RESOLVE)
    finally:
        os.close(root)
    try:
        os.fchdir(fd)
        yield fd
    finally:
        os.chdir("/")
        os.close(fd)


def _under_any(path: str, parents: list[str]) -> bool:
    path = os.path.normpath(path)
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in parents)

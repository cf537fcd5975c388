"""Start the sandbox process from the host and wait until it is ready.

The CLI forks an intermediate process that enters the user namespace (when
the spec asks for one) and a new PID namespace, then forks the sandbox
process, which is PID 1 there, and exits. The CLI is a child subreaper while
it waits, so the sandbox process becomes its child: ``run`` can reap it, and a
sandbox that dies during boot leaves an exit status to report.

Boot progress comes back over a socketpair as control messages: ``userns``
(write my id maps), ``spawned`` (my pid), then ``ready`` or ``error``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import NoReturn

from . import control, linux, ocihooks
from .spec import OCI_VERSION
from .errors import SandboxError, StockadeError
from .providers import Container

LISTEN_BACKLOG = 32


def spawn(
    container: Container, timeout: float, place: Callable[[int], None]
) -> tuple[int, int | None]:
    """Start the sandbox process of CONTAINER; return its pid once it is ready.

    PLACE(pid) runs as soon as the pid is known, while the sandbox boots; the
    sandbox creates its cgroup namespace and runs the create hooks only once
    PLACE has returned. With process.terminal, also return the pty master
    the sandbox opened.
    """
    # Imported here, before the fork, rather than at the top: start, kill and
    # delete boot no sandbox, and these modules took them about 8 ms to load.
    from . import boot  # noqa: F401 - used by the forked child

    if any(n.type == "user" for n in container.namespaces):
        # In its user namespace the sandbox may be unable to read the host's
        # Python library (often under /root), and building a seccomp filter
        # imports more of it. Loaded here, the forked child has it.
        from .sentry import seccomp_filter  # noqa: F401

    state_fd = os.open(container.state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    listener = socket.socket(
        socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
    )
    parent_end, child_end = socket.socketpair(
        socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
    )
    try:
        listener.bind(control.socket_address(state_fd))
        listener.listen(LISTEN_BACKLOG)
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        intermediate = os.fork()
        if intermediate == 0:
            parent_end.close()
            _intermediate(container, child_end, listener, state_fd)
    finally:
        child_end.close()
        listener.close()
        os.close(state_fd)
    with parent_end:
        return _await_ready(
            container, parent_end, intermediate, time.monotonic() + timeout, place
        )


def _intermediate(
    container: Container, report: socket.socket, listener: socket.socket, state_fd: int
) -> NoReturn:
    try:
        _enter_user_namespace(container, report)
        pid_namespace = _namespace(container, "pid")
        if pid_namespace is not None and pid_namespace.path:
            _join(pid_namespace.path, linux.CLONE_NEWPID)
        elif pid_namespace is not None:
            linux.unshare(linux.CLONE_NEWPID)
        # The sandbox waits until "spawned" is sent: its own messages on the
        # same channel must not reach the CLI before its pid does.
        go_read, go_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(go_write)
            os.read(go_read, 1)
            os.close(go_read)
            from . import boot

            boot.main(container, report, listener, state_fd)
        os.close(go_read)
        control.send(report, {"op": "spawned", "pid": pid})
        os.write(go_write, b"x")
        os._exit(0)
    except BaseException as exc:
        try:
            control.send(
                report, {"op": "error", "error": f"sandbox set-up failed: {exc}"}
            )
        finally:
            os._exit(1)


def _enter_user_namespace(container: Container, report: socket.socket) -> None:
    user_namespace = _namespace(container, "user")
    if user_namespace is None:
        return
    if user_namespace.path:
        _join(user_namespace.path, linux.CLONE_NEWUSER)
    else:
        linux.unshare(linux.CLONE_NEWUSER)
        control.send(report, {"op": "userns"})
        reply, _ = control.receive(report)
        if reply is None or reply.get("op") != "mapped":
            raise SandboxError("the runtime did not write the user namespace's id maps")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _join(path: str, flag: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fd, flag)
    finally:
        os.close(fd)


def _namespace(container: Container, kind: str):  # type: ignore[no-untyped-def]
    for namespace in container.namespaces:
        if namespace.type == kind:
            return namespace
    return None


def _await_ready(
    container: Container,
    channel: socket.socket,
    intermediate: int,
    deadline: float,
    place: Callable[[int], None],
) -> tuple[int, int | None]:
    sandbox_pid = 0
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxError(
                    f"sandbox of container {container.id} did not become ready within "
                    f"{container.settings.boot_timeout:g}s; raise boot_timeout if the host is slow"
                )
            channel.settimeout(remaining)
            try:
                message, fds = control.receive(channel)
            except TimeoutError:
                continue
            if message is None:
                raise SandboxError(_died_reason(container, sandbox_pid or intermediate))
            op = message.get("op")
            if op == "userns":
                write_id_maps(container, intermediate)
                control.send(channel, {"op": "mapped"})
            elif op == "spawned":
                sandbox_pid = int(message["pid"])
                os.waitpid(intermediate, 0)
                place(sandbox_pid)
                try:
                    control.send(channel, {"op": "placed"})
                except OSError:
                    pass  # The sandbox failed meanwhile, and its reason is the next message.
            elif op == "hooks":
                container.sandbox_pid = sandbox_pid
                state = hook_state(container, "creating")
                try:
                    ocihooks.run(container.spec.raw, "prestart", state)
                    ocihooks.run(container.spec.raw, "createRuntime", state)
                except StockadeError:
                    control.send(channel, {"op": "abort"})
                    raise
                try:
                    control.send(channel, {"op": "continue", "state": state})
                except OSError:
                    # The sandbox died while the hooks ran.
                    raise SandboxError(_died_reason(container, sandbox_pid)) from None
            elif op == "ready":
                return sandbox_pid, fds[0] if fds else None
            elif op == "error":
                raise SandboxError(f"container {container.id}: {message.get('error')}")
    except BaseException:
        _kill_and_reap(sandbox_pid, intermediate)
        raise


def _died_reason(container: Container, pid: int) -> str:
    from . import boot

    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return (
            f"sandbox of container {container.id} exited during boot without a reason"
        )
    return (
        f"sandbox of container {container.id} exited during boot with exit code "
        f"{boot.exit_code(status)} and no reason; run with --debug for its output"
    )


def _kill_and_reap(*pids: int) -> None:
    for pid in pids:
        if pid <= 0:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def write_id_maps(container: Container, pid: int) -> None:
    linux_section = container.spec.linux
    for name, key in (("uid_map", "uidMappings"), ("gid_map", "gidMappings")):
        lines = [
            f"{m['containerID']} {m['hostID']} {m['size']}\n"
            for m in linux_section.get(key) or []
        ]
        if not lines:
            raise SandboxError(
                f"container {container.id}: a user namespace needs linux.{key} in config.json"
            )
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write("".join(lines))
        except OSError as exc:
            raise SandboxError(
                f"container {container.id}: the kernel rejected linux.{key} "
                f"{json.dumps(linux_section.get(key))} ({exc.strerror}); give each "
                "mapping a size of at least 1, and ranges that overlap neither "
                "inside nor on the host"
            ) from None


def check_reachable(container: Container, path: str, what: str, instead: str) -> None:
    """Fail unless the root of the spec's new user namespace can search PATH's parents.

    The sandbox, and the gofer, reach PATH by name from inside the namespace.
    Its root has no rights over a directory whose owner the namespace does
    not map, so a parent such as a 0700 home directory fails there with a
    bare EACCES. WHAT names PATH in the error, and INSTEAD is the other fix.
    Nothing is checked without a new user namespace or without a mapping of
    the container's root.
    """
    linux_section = container.spec.linux
    if not any(
        namespace.get("type") == "user" and not namespace.get("path")
        for namespace in linux_section.get("namespaces") or []
    ):
        return
    uids = _id_ranges(linux_section.get("uidMappings"))
    gids = _id_ranges(linux_section.get("gidMappings"))
    uid, gid = _host_id(uids, 0), _host_id(gids, 0)
    if uid is None or gid is None:
        return
    parent = os.path.dirname(os.path.abspath(path))
    chain = []
    while True:
        chain.append(parent)
        if parent == "/":
            break
        parent = os.path.dirname(parent)
    for directory in reversed(chain):
        try:
            info = os.stat(directory)
        except OSError:
            return  # the sandbox reports a missing path itself
        if _can_search(info, uid, gid, uids, gids):
            continue
        raise SandboxError(
            f"container {container.id}: the user namespace's root (host uid {uid}, "
            f"gid {gid}) cannot search {directory}, which leads to {what} {path}; "
            f"make it searchable with `chmod o+x {directory}`, or {instead}"
        )


def _id_ranges(mappings: object) -> list[tuple[int, int, int]]:
    ranges = []
    for mapping in mappings if isinstance(mappings, list) else []:
        try:
            ranges.append(
                (int(mapping["containerID"]), int(mapping["hostID"]), int(mapping["size"]))
            )
        except (KeyError, TypeError, ValueError):
            continue  # write_id_maps reports a bad mapping
    return ranges


def _host_id(ranges: list[tuple[int, int, int]], inside: int) -> int | None:
    for container_id, host_id, size in ranges:
        if container_id <= inside < container_id + size:
            return host_id + inside - container_id
    return None


def _can_search(info: os.stat_result, uid: int, gid: int,
                uids: list[tuple[int, int, int]],
                gids: list[tuple[int, int, int]]) -> bool:  # fmt: skip
    """Return whether the namespace's root may search a directory with INFO, as the kernel decides."""
    mapped = any(h <= info.st_uid < h + n for _, h, n in uids) and any(
        h <= info.st_gid < h + n for _, h, n in gids
    )
    if mapped:
        return True  # its CAP_DAC_READ_SEARCH covers files of mapped owners
    if info.st_uid == uid:
        return bool(info.st_mode & 0o100)
    if info.st_gid == gid:
        return bool(info.st_mode & 0o010)
    return bool(info.st_mode & 0o001)


def wait_for_exit(pid: int, timeout: float | None = None) -> bool:
    """Wait until PID has exited, without polling; return False on timeout."""
    import select

    try:
        fd = linux.pidfd_open(pid)
    except OSError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def hook_state(container: Container, status: str) -> dict:  # type: ignore[type-arg]
    """Return the state document that OCI hooks read on stdin."""
    return {
        "ociVersion": OCI_VERSION,
        "id": container.id,
        "status": status,
        "pid": container.sandbox_pid,
        "bundle": container.bundle,
        "annotations": container.annotations,
    }


def start(container: Container) -> int:
    """Tell the sandbox to launch the application; return the init's pid inside it."""
    request = {"op": "start", "state": hook_state(container, "created")}
    reply = control.request(container.state_dir, request, timeout=60)
    return int(reply.get("pid", 0))


def host_pid(sandbox_pid: int, namespace_pid: int) -> int:
    """Return the host pid of the process that is NAMESPACE_PID in the sandbox, or 0.

    NAMESPACE_PID is a pid in the sandbox's PID namespace. The process may be
    in the application's namespace, nested in that one.
    """
    level = len(_namespace_pids(sandbox_pid)) - 1
    if level < 0:
        return 0
    for pid in linux.pids_in_pid_namespace(sandbox_pid):
        pids = _namespace_pids(pid)
        if len(pids) > level and pids[level] == namespace_pid:
            return pid
    return 0


def application_pids(sandbox_pid: int) -> list[int]:
    """Return the host pids of the container's processes, without the runtime's own.

    A process counts when the sandbox traces it, which every application
    process is from its birth, orphans too. A PID namespace joined by path
    also contains other containers' processes, and they do not count. The
    sandbox and its helpers, which run the runtime's own executable, are left
    out.
    """
    try:
        runtime_exe = _identity(f"/proc/{sandbox_pid}/exe")
    except OSError:
        return []
    pids = []
    for pid in linux.pids_in_pid_namespace(sandbox_pid):
        if pid == sandbox_pid or _tracer(pid) != sandbox_pid:
            continue
        try:
            if _identity(f"/proc/{pid}/exe") == runtime_exe:
                continue
        except OSError:
            continue
        pids.append(pid)
    return pids


def _identity(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _tracer(pid: int) -> int:
    """Return the host pid of the process that traces PID, or 0."""
    return (linux.status_numbers(pid, "TracerPid") or [0])[0]


def _namespace_pids(pid: int) -> list[int]:
    """Return PID's pid in each PID namespace it is in, the host's first."""
    return linux.status_numbers(pid, "NSpid")

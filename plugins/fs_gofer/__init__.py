"""The "gofer" file-access mode: a separate process owns the container's files.

``create`` forks the gofer before the sandbox. The gofer enters a mount
namespace of its own, builds the rootfs with the spec's bind mounts, pivots
into it and serves the file protocol of ``stockade.sentry.fileproto`` on a
socket pair. The sandbox's own mount namespace contains no host directory: a
tmpfs root with proc, sysfs, its /dev and the spec's other kernel and tmpfs
mounts. The sentry sends every path-based call of the application to the
gofer and hands the application the descriptors it gets back.

The gofer exits when the sandbox closes its end of the socket; ``delete``
ends it by pid if it is still there.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any, ClassVar

from stockade import linux, ocihooks
from stockade.errors import SpecError, StockadeError
from stockade.hookspecs import hookimpl
from stockade.providers import FILE_ACCESS, Container
from stockade.sentry import fileproto as fp
from stockade.spec import Spec

READY_TIMEOUT = 10.0
SANDBOX_ROOT = "sandbox-root"  # the sandbox's tmpfs root, under the state directory


class GoferFileAccess:
    name = "gofer"
    kind: ClassVar[str] = FILE_ACCESS
    description = (
        "a separate gofer process owns the rootfs and bind mounts; the sandbox "
        "sees no host directory"
    )

    fallback = "direct"

    # --- on the host, in create -------------------------------------------------

    def unsupported(self, spec: Spec) -> str | None:
        """Return why the gofer cannot run SPEC, or None."""
        if ocihooks.hooks_of(spec.raw, "startContainer"):
            # The hook's path is resolved in the container's namespace, and
            # the sandbox's namespace contains none of the container's files.
            return "cannot run startContainer hooks"
        return None

    def prepare(self, container: Container) -> None:
        reason = self.unsupported(container.spec)
        if reason is not None:
            raise SpecError(
                f"--file-access=gofer {reason}; use --file-access=direct for this "
                "container"
            )
        from stockade.sandbox import check_reachable

        from . import process

        # The sandbox mounts its tmpfs root on a directory in the state
        # directory, which it reaches by name from the user namespace.
        check_reachable(
            container, os.path.join(container.state_dir, SANDBOX_ROOT),
            "the state directory", "give --root a directory it can reach",
        )
        ours, theirs = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
        )
        # Made here, with the CLI's rights: in a user namespace the sandbox may
        # not write to the state directory, though it can pass through it.
        os.mkdir(os.path.join(container.state_dir, SANDBOX_ROOT), 0o700)
        user = next((n for n in container.namespaces if n.type == "user"), None)
        pid = os.fork()
        if pid == 0:
            ours.close()
            process.main(
                container.spec, container.state_dir, theirs, (user.path or "") if user else None
            )  # never returns
        theirs.close()
        container.plugin_state["gofer"] = {
            "pid": pid,
            "start": linux.process_start_time(pid),
        }
        if user is not None and not user.path:
            _map_user_namespace(container, ours, pid)
            # The sandbox joins the gofer's user namespace rather than making
            # its own, so both see the same ids and the kernel maps them.
            user.path = f"/proc/{pid}/ns/user"
        # The sandbox, not this process, waits for the gofer's first message
        # (see setup_root), so the two set themselves up at the same time.
        container.inherit_fds.append(ours.fileno())
        container.file_server = fp.FileClient(ours)

    # --- inside the sandbox ---------------------------------------------------------

    def setup_root(self, container: Container) -> None:
        from stockade.rootfs import SANDBOX, RootBuilder

        from . import process

        _await_ready(container.file_server.sock)
        process.place_sandbox_mounts(container.file_server, container.spec)
        staging = os.path.join(container.state_dir, SANDBOX_ROOT)
        builder = RootBuilder(container.spec, staging=staging, role=SANDBOX)
        client = container.file_server
        builder.fetch_copy_up = lambda destination: process.fetch_copy_up(
            client, destination
        )
        builder.build(container.before_pivot)
        # The sentry keeps program copies on this root, so it is read-only for
        # the application; the sentry writes through a detached clone.
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            container.sandbox_root_fd = linux.open_tree_clone(root)
            linux.mount_setattr(root, linux.MOUNT_ATTR_RDONLY, recursive=False)
        finally:
            os.close(root)

    def check_process(self, container: Container, launcher: Any) -> None:
        """Create a missing cwd and find the executable, through the gofer."""
        from . import process

        process.check_process(container.file_server, launcher)

    # --- delete ---------------------------------------------------------------------

    def teardown(self, container: Container) -> None:
        record = container.plugin_state.get("gofer") or {}
        pid = record.get("pid")
        if isinstance(pid, int) and pid > 0:
            _end(pid, record.get("start"))


def _map_user_namespace(container: Container, sock: socket.socket, pid: int) -> None:
    """Write the id maps of the user namespace that the gofer PID has just made."""
    from stockade.sandbox import write_id_maps

    sock.settimeout(READY_TIMEOUT)
    try:
        try:
            message = sock.recv(4096)
        except OSError:
            message = b""
        if message != b"userns":
            reason = message.decode(errors="replace") or "it exited"
            raise StockadeError(f"the gofer could not make its user namespace: {reason}")
        write_id_maps(container, pid)
        sock.send(b"mapped")
    except BaseException:
        _end(pid, linux.process_start_time(pid))
        sock.close()
        raise
    sock.settimeout(None)


def _await_ready(sock: socket.socket) -> None:
    """Wait for the gofer's first message: "ready", or why it could not start."""
    sock.settimeout(READY_TIMEOUT)
    try:
        message = sock.recv(4096)
    except TimeoutError:
        raise StockadeError(
            f"the gofer did not report ready within {READY_TIMEOUT:g} s; check that "
            "the rootfs and bind mount sources are on responsive file systems"
        ) from None
    except OSError:
        message = b""
    sock.settimeout(None)
    if message != b"ready":
        reason = message.decode(errors="replace") or "it exited before it was ready"
        raise StockadeError(f"the gofer could not serve the rootfs: {reason}")


def _end(pid: int, start: Any) -> None:
    """Kill and reap the gofer PID if it is still the process that started at START."""
    if start is not None and linux.process_start_time(pid) is None:
        # An exited gofer has no start time, but create, its parent, must
        # still reap it. Its pid is not reused before that, so the check is safe.
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass  # not our child: its parent reaps it
        return
    if start is None or linux.process_start_time(pid) != start:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid  # not our child: its parent reaps it
        if done or linux.process_start_time(pid) != start:
            return
        time.sleep(0.005)


@hookimpl
def stockade_providers():  # type: ignore[no-untyped-def]
    return [GoferFileAccess()]

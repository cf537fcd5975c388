"""The gofer process: its namespace, its confinement, and the create-time checks."""

from __future__ import annotations

import os
import socket
import stat
import struct
from typing import Any, NoReturn

from stockade import linux
from stockade.errors import SpecError, StockadeError
from stockade.process import executable_candidates, executable_error, last_capability
from stockade.rootfs import GOFER, RESOLVE, RootBuilder, is_bind
from stockade.sentry import bpf
from stockade.sentry import fileproto as fp
from stockade.spec import Spec

from .server import KEPT_CAPS, Gofer


def main(
    spec: Spec, state_dir: str, sock: socket.socket, user: str | None = None
) -> NoReturn:
    """Run the gofer in this forked child: build its root, confine it, serve.

    USER is None when the container has no user namespace, "" when the gofer
    makes it (the CLI writes its id maps), or the path of one to join.
    """
    code = 0
    try:
        try:
            with open("/proc/self/comm", "w") as comm:
                comm.write("stockade-gofer")
        except OSError:
            pass
        for name in os.listdir("/proc/self/fd"):
            if int(name) > 2 and int(name) != sock.fileno():
                try:
                    os.close(int(name))
                except OSError:
                    pass
        devnull = os.open("/dev/null", os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(devnull, target)
        os.close(devnull)
        os.setsid()
        program = bpf.gofer_program()  # before pivot_root: the cache is a host file
        if user is not None:
            _enter_user_namespace(sock, user)
        linux.unshare(linux.CLONE_NEWNS)
        staging = os.path.join(state_dir, "gofer-root")  # used when the root is "/"
        builder = RootBuilder(spec, staging=staging, role=GOFER)
        builder.build()
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        markers = {dev: _canonical(root, path) for path, dev in builder.markers.items()}
        copy_ups = {_canonical(root, path): fd for path, fd in builder.copy_ups.items()}
        _confine(program)
        gofer = Gofer(root, markers, copy_ups)
    except BaseException as exc:
        reason = str(exc) if isinstance(exc, StockadeError) else _describe(exc)
        try:
            sock.send(reason.encode()[:4000])
        except OSError:
            pass
        os._exit(1)
    try:
        sock.send(b"ready")
        gofer.serve(sock)
    except BaseException:
        code = 2
    finally:
        os._exit(code)


def _enter_user_namespace(sock: socket.socket, path: str) -> None:
    """Join the user namespace at PATH, or make one and wait for its id maps.

    The gofer then resolves and opens files as the container's ids, and the
    kernel limits its capabilities to the files those ids map to.
    """
    if path:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(fd, linux.CLONE_NEWUSER)
        finally:
            os.close(fd)
    else:
        linux.unshare(linux.CLONE_NEWUSER)
        sock.send(b"userns")
        if sock.recv(64) != b"mapped":
            raise StockadeError("the runtime did not write the user namespace's id maps")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _canonical(root: int, destination: str) -> bytes:
    """Return where DESTINATION really is in the root, after the image's symlinks."""
    fd = linux.openat2(root, destination, os.O_PATH | os.O_DIRECTORY, 0, RESOLVE)
    try:
        os.fchdir(fd)
        return os.getcwdb()
    finally:
        os.close(fd)


def _confine(program: bytes) -> None:
    """Keep only the capabilities the gofer lends callers, then load its filter."""
    for number in range(last_capability() + 1):
        if not KEPT_CAPS & (1 << number):
            linux.prctl(linux.PR_CAPBSET_DROP, number)
    linux.capset(KEPT_CAPS, KEPT_CAPS, 0)
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    bpf.load(program, all_threads=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return f"{type(exc).__name__}: {exc}"


# --- create-time checks, from inside the sandbox ---------------------------------------


def place_sandbox_mounts(client: fp.FileClient, spec: Spec) -> None:
    """Point each sandbox-owned mount of SPEC at its real place in the image.

    A destination may pass through a symlink in the rootfs; the gofer's
    marker sits where the symlink leads, and the sandbox mounts there too.
    """
    for mount in spec.mounts:
        if is_bind(mount):
            continue
        destination = os.path.normpath(mount["destination"]).encode()
        reply = client.call(fp.CHDIR, fp.ROOT, destination)
        if reply.kind == fp.REDIRECT:
            mount["destination"] = reply.data.decode(errors="surrogateescape")


def fetch_copy_up(client: fp.FileClient, destination: str) -> int:
    """Return the tmpfs the gofer filled for the tmpcopyup mount at DESTINATION."""
    reply = client.call(fp.COPY_UP, fp.ROOT, destination.encode())
    if reply.kind != fp.OK or reply.fd < 0:
        raise StockadeError(
            f"the gofer has no tmpcopyup tmpfs for {destination}: "
            f"{os.strerror(reply.value) if reply.kind == fp.ERROR else 'no descriptor'}"
        )
    return reply.fd


def check_process(client: fp.FileClient, launcher: Any) -> None:
    """Create the cwd if it is missing and find the executable, as direct mode does."""
    creds = fp.Credentials(launcher.uid, launcher.gid, tuple(launcher.groups))
    cwd = launcher.cwd.encode()
    reply = client.call(fp.CHDIR, fp.ROOT, cwd)
    if reply.kind == fp.ERROR:
        created = client.call(fp.MKDIRS, fp.ROOT, cwd, mode=0o755)
        if created.kind == fp.ERROR:
            raise SpecError(
                f"process.cwd {launcher.cwd} does not exist and cannot be created: "
                f"{os.strerror(created.value)}"
            )
    name = launcher.args[0]
    reason = "no such file or directory"
    for candidate in executable_candidates(name, launcher.env, launcher.cwd):
        # The gofer takes absolute paths; an empty PATH entry means the cwd.
        candidate = os.path.normpath(os.path.join(launcher.cwd, candidate))
        reply = client.call(fp.STAT, creds, candidate.encode())
        if reply.kind == fp.REDIRECT:
            return  # in a sandbox mount: the exec itself will tell
        if reply.kind != fp.OK or len(reply.data) < 28:
            reason = f"stat {candidate}: {os.strerror(reply.value).lower()}"
            continue
        mode = struct.unpack_from("<I", reply.data, 24)[0]
        if stat.S_ISREG(mode) and mode & 0o111:
            return
        reason = "permission denied"
    raise executable_error(name, reason)

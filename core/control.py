"""The control protocol between the CLI and a sandbox process.

Each message is one JSON object in one SOCK_SEQPACKET record, with file
descriptors passed alongside as SCM_RIGHTS. Every message carries ``"v"``,
the protocol version; a peer rejects a version it does not speak. Requests
have an ``"op"``; replies have ``"ok"`` and, on failure, ``"error"``.

The socket lives in the container's state directory. Its path is reached
through ``/proc/self/fd/<dirfd>/control.sock``, so a long ``--root`` or id
never runs into the 108-byte limit of a Unix socket address.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

from .errors import SandboxError

VERSION = 1
MAX_MESSAGE = 64 * 1024
MAX_FDS = 16


def send(
    sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None
) -> None:
    data = json.dumps({"v": VERSION, **message}).encode()
    if len(data) > MAX_MESSAGE:
        raise SandboxError(
            f"control message of {len(data)} bytes exceeds {MAX_MESSAGE}"
        )
    ancillary = []
    if fds:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
    sock.sendmsg([data], ancillary)


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """Return the next message and its descriptors, or (None, []) at end of stream."""
    fds = array.array("i")
    data, ancillary, flags, _ = sock.recvmsg(
        MAX_MESSAGE, socket.CMSG_LEN(MAX_FDS * fds.itemsize)
    )
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    received = list(fds)
    if not data:
        _close_all(received)
        return None, []
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        _close_all(received)
        raise SandboxError(
            "control message truncated: it exceeds the protocol's limits"
        )
    try:
        message = json.loads(data)
    except ValueError:
        _close_all(received)
        raise SandboxError("control message is not valid JSON")
    if not isinstance(message, dict) or message.get("v") != VERSION:
        _close_all(received)
        version = message.get("v") if isinstance(message, dict) else None
        raise SandboxError(f"control protocol version {version!r} is not {VERSION}")
    return message, received


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def socket_address(state_dir_fd: int) -> str:
    return f"/proc/self/fd/{state_dir_fd}/control.sock"


@contextlib.contextmanager
def connect(state_dir: str, timeout: float = 10.0) -> Iterator[socket.socket]:
    dirfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_address(dirfd))
        yield sock
    finally:
        sock.close()
        os.close(dirfd)


def request(
    state_dir: str, message: dict[str, Any], timeout: float = 10.0
) -> dict[str, Any]:
    """Send one request to the sandbox of STATE_DIR and return its reply."""
    try:
        with connect(state_dir, timeout) as sock:
            send(sock, message)
            reply, fds = receive(sock)
    except (TimeoutError, ConnectionError, FileNotFoundError) as exc:
        raise SandboxError(
            f"sandbox control socket in {state_dir} did not respond: {exc}"
        )
    _close_all(fds)
    if reply is None:
        raise SandboxError(
            f"sandbox closed the control socket in {state_dir} without a reply"
        )
    if not reply.get("ok"):
        raise SandboxError(str(reply.get("error", "sandbox reported an unknown error")))
    return reply


def open_exec(
    state_dir: str, process: dict[str, Any], fds: list[int]
) -> tuple[socket.socket, dict[str, Any], list[int]]:
    """Ask the sandbox to start PROCESS with FDS as its stdio.

    Returns the connection, which later carries the process's exit, the
    reply with its pid inside the sandbox, and the descriptors that came with
    it (the pty master, for a process with a terminal).
    """
    dirfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(60)
        sock.connect(socket_address(dirfd))
        send(sock, {"op": "exec", "process": process}, fds)
        reply, received = receive(sock)
    except (ConnectionError, FileNotFoundError, TimeoutError) as exc:
        sock.close()
        raise SandboxError(
            f"sandbox control socket in {state_dir} did not respond: {exc}"
        )
    finally:
        os.close(dirfd)
    if reply is None or not reply.get("ok"):
        _close_all(received)
        sock.close()
        error = reply.get("error") if reply else "the sandbox closed the connection"
        raise SandboxError(str(error))
    sock.settimeout(None)
    return sock, reply, received

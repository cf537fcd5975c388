"""The exec launcher: a process inside the sandbox that starts ``exec`` processes.

The sandbox process confines itself once the application runs: its own
seccomp filter denies execve, and it drops the capabilities that a new process
needs to take its user and capability sets. So, before that, the platform
starts this launcher as a child of the sandbox (under the platform's control,
so that whatever it forks runs on the platform too).

Protocol on the socketpair with the sandbox, one JSON message per record:

- request ``{"op": "exec", "id": N, "process": {...}}`` with three descriptors
  (stdin, stdout, stderr of the new process);
- reply ``{"op": "started", "id": N, "pid": P}`` once the process has exec'd,
  with the pty master alongside when the process has a terminal, or
  ``{"op": "failed", "id": N, "error": "..."}``;
- later ``{"op": "exited", "pid": P, "status": S}`` with its wait status.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from . import control
from .errors import SandboxError, StockadeError
from .process import ProcessLauncher


def serve(
    channel: socket.socket,
    prepare_child: Callable[[], None],
    spec_filter: bytes | None = None,
) -> NoReturn:
    """Run the launcher loop; PREPARE_CHILD runs in each new child before exec.

    SPEC_FILTER, the container's linux.seccomp program, applies to every
    process started here, as it does to the init.
    """
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        ready, _, _ = select.select([channel, wake_read], [], [])
        if wake_read in ready:
            _drain(wake_read)
            _report_exits(channel)
        if channel in ready:
            try:
                message, fds = control.receive(channel)
            except (StockadeError, OSError):
                continue
            if message is None:
                os._exit(0)  # the sandbox is gone
            _start(channel, message, fds, prepare_child, spec_filter)


def _start(
    channel: socket.socket,
    message: dict[str, Any],
    fds: list[int],
    prepare_child: Callable[[], None],
    spec_filter: bytes | None,
) -> None:
    request_id = message.get("id")
    master = -1
    try:
        if len(fds) != 3:
            raise StockadeError(
                "exec needs exactly three descriptors: stdin, stdout, stderr"
            )
        launcher = ProcessLauncher(message["process"], for_exec=True)
        launcher.spec_filter = spec_filter
        if message["process"].get("terminal"):
            # Opened here, inside the container, so the pty is in its own devpts.
            master, launcher.terminal_fd = os.openpty()
        launcher.before_fork()
        pid = os.fork()
        if pid == 0:
            _child(fds, launcher, prepare_child)
        if launcher.terminal_fd is not None:
            os.close(launcher.terminal_fd)
        error = launcher.result()
    except (StockadeError, OSError, KeyError, ValueError) as exc:
        error, pid = str(exc), 0
    finally:
        for fd in fds:
            os.close(fd)
    if error is None:
        reply = {"op": "started", "id": request_id, "pid": pid}
        control.send(channel, reply, [master] if master >= 0 else None)
    else:
        control.send(channel, {"op": "failed", "id": request_id, "error": error})
    if master >= 0:
        os.close(master)


def _child(
    fds: list[int], launcher: ProcessLauncher, prepare_child: Callable[[], None]
) -> None:
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.setsid()
        prepare_child()
    except BaseException as exc:  # in the forked child: report and never return
        launcher.fail(f"the platform's set-up of the exec process failed: {exc}")
    launcher.exec()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 256):
            pass
    except BlockingIOError:
        pass


def _report_exits(channel: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        control.send(channel, {"op": "exited", "pid": pid, "status": status})


class ExecBroker:
    """The sandbox's half: passes exec requests to the launcher and replies to the CLI.

    Each CLI connection stays open until its process exits: it gets a
    ``{"ok": true, "pid": P}`` reply when the process has started, then
    ``{"op": "exited", "status": S}``.
    """

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel
        self.lock = threading.Lock()
        self.next_id = 0
        self.waiting: dict[int, socket.socket] = {}  # request id -> CLI connection
        self.running: dict[int, socket.socket] = {}  # pid -> CLI connection
        self.gone = ""  # why exec is no longer possible, once the launcher has exited

    def submit(
        self, conn: socket.socket, process: dict[str, Any], fds: list[int]
    ) -> None:
        with self.lock:
            if self.gone:
                raise SandboxError(self.gone)
            self.next_id += 1
            self.waiting[self.next_id] = conn
            request = {"op": "exec", "id": self.next_id, "process": process}
            control.send(self.channel, request, fds)

    def read_forever(self) -> None:
        try:
            self._read_until_gone()
        finally:
            self._fail_all(
                "the sandbox's exec launcher has exited; exec is no longer possible"
            )

    def _fail_all(self, reason: str) -> None:
        """Fail every waiting and running exec with REASON, and reject later ones."""
        with self.lock:
            self.gone = reason
            for conn in [*self.waiting.values(), *self.running.values()]:
                _send_quietly(conn, {"ok": False, "error": reason})
                conn.close()
            self.waiting.clear()
            self.running.clear()

    def _read_until_gone(self) -> None:
        while True:
            try:
                message, fds = control.receive(self.channel)
            except (StockadeError, OSError):
                return
            if message is None:
                return
            try:
                self._dispatch(message, fds)
            finally:
                for fd in fds:
                    os.close(fd)

    def _dispatch(self, message: dict[str, Any], fds: list[int]) -> None:
        op = message.get("op")
        with self.lock:
            if op == "started":
                conn = self.waiting.pop(message["id"], None)
                if conn is not None:
                    self.running[message["pid"]] = conn
                    _send_quietly(conn, {"ok": True, "pid": message["pid"]}, fds)
            elif op == "failed":
                conn = self.waiting.pop(message["id"], None)
                if conn is not None:
                    _send_quietly(conn, {"ok": False, "error": message.get("error")})
                    conn.close()
            elif op == "exited":
                conn = self.running.pop(message["pid"], None)
                if conn is not None:
                    _send_quietly(conn, {"op": "exited", "status": message["status"]})
                    conn.close()


def _send_quietly(
    conn: socket.socket, message: dict[str, Any], fds: list[int] | None = None
) -> None:
    try:
        control.send(conn, message, fds)
    except OSError:
        pass  # the CLI went away; the process runs on regardless

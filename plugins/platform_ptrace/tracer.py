"""The tracer loop of the ptrace platform, on raw ptrace(2) through ctypes."""

from __future__ import annotations

import ctypes
import os
import signal

from stockade.errors import SandboxError
from stockade.providers import ChildSetup, Container

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

PTRACE_TRACEME = 0
PTRACE_CONT = 7
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201

PTRACE_O_TRACESYSGOOD = 0x01
PTRACE_O_TRACEFORK = 0x02
PTRACE_O_TRACEVFORK = 0x04
PTRACE_O_TRACECLONE = 0x08
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_EXITKILL = 0x100000

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
NEW_PROCESS_EVENTS = (PTRACE_EVENT_FORK, PTRACE_EVENT_VFORK, PTRACE_EVENT_CLONE)

WALL = 0x40000000
OPTIONS = (
    PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK
    | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL
)  # fmt: skip


def ptrace(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    result = _libc.ptrace(request, pid, addr, data)
    if result == -1:
        err = ctypes.get_errno()
        if err:
            raise OSError(err, os.strerror(err), f"ptrace request {request:#x} on pid {pid}")
    return result


def event_message(pid: int) -> int:
    value = ctypes.c_ulong()
    ptrace(PTRACE_GETEVENTMSG, pid, 0, ctypes.addressof(value))
    return value.value


def resume(pid: int, sig: int = 0) -> None:
    try:
        ptrace(PTRACE_CONT, pid, 0, sig)
    except ProcessLookupError:
        pass  # killed while stopped; its exit is reaped later


class PtracePlatform:
    """Runs the application as traced processes and reports how its init exited."""

    def __init__(self) -> None:
        self.tracees: set[int] = set()
        # Children whose first stop (the SIGSTOP of auto-attach) is still to come.
        self.expected_stops: set[int] = set()

    def check(self, container: Container) -> None:
        pass

    def prepare(self, container: Container) -> None:
        pass

    def launch(self, container: Container, child_setup: ChildSetup) -> int:
        child_setup.before_fork()
        pid = os.fork()
        if pid == 0:
            try:
                ptrace(PTRACE_TRACEME, 0)
                os.kill(os.getpid(), signal.SIGSTOP)
            finally:
                child_setup.exec()
        self._attach_first_stop(pid)
        error = self._run_to_exec(pid, child_setup)
        if error is not None:
            raise SandboxError(error)
        self.tracees.add(pid)
        return pid

    def _attach_first_stop(self, pid: int) -> None:
        _, status = os.waitpid(pid, WALL)
        if not os.WIFSTOPPED(status):
            raise SandboxError(f"application process {pid} exited before it could be traced")
        ptrace(PTRACE_SETOPTIONS, pid, 0, OPTIONS)
        resume(pid)

    def _run_to_exec(self, pid: int, child_setup: ChildSetup) -> str | None:
        """Drive the new child until its execve succeeds or it exits; return its exec error."""
        while True:
            _, status = os.waitpid(pid, WALL)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                error = child_setup.result()
                return error or f"application process exited before exec (status {status:#x})"
            event = status >> 16
            if event == PTRACE_EVENT_EXEC:
                error = child_setup.result()
                resume(pid)
                return error
            resume(pid, 0 if event else os.WSTOPSIG(status))

    def run(self, container: Container, init_pid: int) -> int:
        init_status: int | None = None
        while True:
            try:
                pid, status = os.waitpid(-1, WALL)
            except ChildProcessError:
                break
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                self.tracees.discard(pid)
                if pid == init_pid:
                    init_status = status
                    self._kill_all()
            elif os.WIFSTOPPED(status):
                self._on_stop(pid, status)
        return init_status if init_status is not None else 255 << 8

    def _on_stop(self, pid: int, status: int) -> None:
        event = status >> 16
        sig = os.WSTOPSIG(status)
        if event in NEW_PROCESS_EVENTS:
            child = event_message(pid)
            if child not in self.tracees:
                self.tracees.add(child)
                self.expected_stops.add(child)
            resume(pid)
        elif event:
            resume(pid)
        elif pid not in self.tracees:
            # The first stop of a new child can arrive before its parent's event.
            self.tracees.add(pid)
            resume(pid)
        elif sig == signal.SIGSTOP and pid in self.expected_stops:
            self.expected_stops.discard(pid)
            resume(pid)
        else:
            resume(pid, sig)  # a signal-delivery stop: deliver the signal

    def _kill_all(self) -> None:
        """End every process but this one: the sandbox is PID 1 of their namespace."""
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass

"""One mediated system call as the sentry records it, and its strace-like rendering."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

from . import ptrace_raw, syscalls
from .syscalls import ArgKind

AT_FDCWD = -100
MAX_SHOWN_STRING = 256


def signed(value: int) -> int:
    return ctypes.c_int64(value).value


def signed32(value: int) -> int:
    return ctypes.c_int32(value & 0xFFFFFFFF).value


@dataclass
class SyscallCall:
    """A system call stopped at seccomp entry: who made it and with which arguments."""

    container_id: str
    pid: int
    nr: int
    args: tuple[int, ...]
    name: str = ""
    _decoded: list[Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.name:
            self.name = syscalls.name(self.nr)

    def decoded(self) -> list[Any]:
        """Return the arguments decoded by kind: paths and addresses read from memory.

        Strings come back as ``str`` (undecodable bytes escaped), socket
        addresses in strace's notation, descriptors and numbers as ints, and
        pointers as ints. Memory that cannot be read gives ``None``.
        """
        if self._decoded is None:
            entry = syscalls.SYSCALLS.get(self.nr)
            kinds = entry.args if entry is not None else ()
            self._decoded = [self._decode(i, kind) for i, kind in enumerate(kinds)]
        return self._decoded

    def _decode(self, index: int, kind: ArgKind) -> Any:
        value = self.args[index]
        try:
            if kind in (ArgKind.PATH, ArgKind.STR):
                raw = ptrace_raw.read_string(self.pid, value)
                return raw.decode("utf-8", "backslashreplace")
            if kind is ArgKind.SOCKADDR:
                length = self.args[index + 1] if index + 1 < len(self.args) else 0
                return ptrace_raw.format_sockaddr(
                    ptrace_raw.read_sockaddr(self.pid, value, length)
                )
        except OSError:
            return None
        if kind in (
            ArgKind.FD,
            ArgKind.DIRFD,
            ArgKind.INT,
            ArgKind.PID,
            ArgKind.SIGNAL,
        ):
            return signed32(value)
        return value

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "syscall": self.name, "args": self.decoded()}

    def format(self, result: int | None = None) -> str:
        """Render the call as strace does: ``openat(AT_FDCWD, "/etc", ...) = 3``."""
        entry = syscalls.SYSCALLS.get(self.nr)
        kinds = entry.args if entry is not None else ()
        shown = [_show(value, kind) for value, kind in zip(self.decoded(), kinds)]
        text = f"[pid {self.pid}] {self.name}({', '.join(shown)})"
        if result is not None:
            text += f" = {result}"
        return text


def _show(value: Any, kind: ArgKind) -> str:
    if value is None:
        return "?"
    if kind in (ArgKind.PATH, ArgKind.STR):
        text = (
            value
            if len(value) <= MAX_SHOWN_STRING
            else value[:MAX_SHOWN_STRING] + "..."
        )
        return '"' + text.replace('"', '\\"') + '"'
    if kind is ArgKind.DIRFD and value == AT_FDCWD:
        return "AT_FDCWD"
    if kind in (ArgKind.PTR, ArgKind.FLAGS, ArgKind.ARGV):
        return hex(value)
    if kind is ArgKind.MODE:
        return oct(value)
    return str(value)

"""Apply an OCI ``process`` object to a freshly forked child and exec it.

The platform forks the child and calls :meth:`ProcessLauncher.exec` in it.
A failure before ``execve`` succeeds is written to a close-on-exec pipe, so
the sandbox can tell "exec failed: no such file" from "the program ran and
exited": the pipe reaches end-of-file with no data exactly when exec worked.
"""

from __future__ import annotations

import fcntl
import os
import resource
import termios
import stat
from typing import Any

from . import linux
from .sentry import bpf
from .errors import SpecError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EXEC_FAILED = 127


class ProcessLauncher:
    """Carries one OCI process into a child: ids, limits, cwd, env, then execve."""

    def __init__(self, process: dict[str, Any]) -> None:
        self.args: list[str] = list(process["args"])
        self.env: list[str] = list(process.get("env") or [])
        self.cwd: str = process.get("cwd") or "/"
        user = process.get("user") or {}
        self.uid: int = user.get("uid", 0)
        self.gid: int = user.get("gid", 0)
        self.groups: list[int] = list(user.get("additionalGids") or [])
        self.umask: int | None = user.get("umask")
        self.rlimits = [_parse_rlimit(r) for r in process.get("rlimits") or []]
        self.no_new_privileges = bool(process.get("noNewPrivileges"))
        self.capabilities = Capabilities.from_spec(process.get("capabilities") or {})
        self.oom_score_adj: int | None = process.get("oomScoreAdj")
        self._error_read = -1
        self._error_write = -1
        # The pty the process gets as its stdio and controlling terminal, if any.
        self.terminal_fd: int | None = None
        # The BPF of the spec's linux.seccomp profile, loaded where runc loads it.
        self.spec_filter: bytes | None = None

    def before_fork(self) -> None:
        self._error_read, self._error_write = os.pipe2(os.O_CLOEXEC)

    def exec(self) -> None:
        """In the child: apply the settings and exec; on failure report and _exit."""
        os.close(self._error_read)
        try:
            self._apply()
            environ = dict(item.split("=", 1) for item in self.env)
            path = find_executable(self.args[0], self.env, self.cwd)
            os.closerange(3, self._error_write)
            os.closerange(self._error_write + 1, 1 << 20)
            os.execve(path, self.args, environ)
        except BaseException as exc:
            message = _describe(exc, self.args[0])
            try:
                os.write(self._error_write, message.encode()[:4000])
            finally:
                os._exit(EXEC_FAILED)

    def result(self) -> str | None:
        """In the sandbox: return the child's exec error, or None if exec succeeded."""
        os.close(self._error_write)
        chunks = []
        while True:
            chunk = os.read(self._error_read, 4096)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self._error_read)
        return b"".join(chunks).decode(errors="replace") or None

    def _attach_terminal(self) -> None:
        """Make the pty this session's controlling terminal and the process's stdio."""
        if self.terminal_fd is None:
            return
        if os.getsid(0) != os.getpid():
            os.setsid()
        fcntl.ioctl(self.terminal_fd, termios.TIOCSCTTY, 0)
        for target in (0, 1, 2):
            os.dup2(self.terminal_fd, target)

    def _apply(self) -> None:
        self._attach_terminal()
        if self.spec_filter and not self.no_new_privileges:
            # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
            # capability sets below may drop, so it goes in first.
            bpf.load(self.spec_filter)
        for name, kind, soft, hard in self.rlimits:
            try:
                resource.setrlimit(kind, (soft, hard))
            except (ValueError, OSError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                raise SpecError(
                    f"cannot set {name} to soft {soft}, hard {hard}: {reason}; the "
                    f"runtime may not raise it above its own hard limit, so lower it "
                    f"in process.rlimits"
                ) from None
        if self.oom_score_adj is not None:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(self.oom_score_adj))
        os.chdir(self.cwd)
        if self.umask is not None:
            os.umask(self.umask)
        self.capabilities.drop_bounding()
        linux.prctl(linux.PR_SET_KEEPCAPS, 1)
        os.setgroups(self.groups)
        os.setresgid(self.gid, self.gid, self.gid)
        os.setresuid(self.uid, self.uid, self.uid)
        self.capabilities.apply()
        if self.no_new_privileges:
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
            if self.spec_filter:
                bpf.load(self.spec_filter)  # last, so it cannot stop the set-up above


class Capabilities:
    """The five capability sets of an OCI process, as kernel bit masks.

    CAP_SYS_PTRACE is never granted, whatever the spec says. ptrace itself is
    denied by the syscall policy; what the capability would still allow is
    reading other processes' /proc entries, the sandbox process's included.
    """

    NEVER = frozenset({"CAP_SYS_PTRACE"})

    def __init__(self, sets: dict[str, int]) -> None:
        self.sets = sets

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Capabilities:
        sets = {}
        for name in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            mask = 0
            for cap in spec.get(name) or []:
                if cap in cls.NEVER:
                    continue
                number = CAPABILITY_NUMBERS.get(cap)
                if number is None:
                    raise SpecError(
                        f"unknown capability {cap!r} in process.capabilities.{name}"
                    )
                mask |= 1 << number
            sets[name] = mask
        return cls(sets)

    def drop_bounding(self) -> None:
        for number in range(last_capability() + 1):
            if not self.sets["bounding"] & (1 << number):
                linux.prctl(linux.PR_CAPBSET_DROP, number)

    def apply(self) -> None:
        linux.capset(
            self.sets["effective"], self.sets["permitted"], self.sets["inheritable"]
        )
        linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
        # The kernel raises an ambient capability only if it is also permitted and
        # inheritable; engines list ambient capabilities without inheritable ones.
        ambient = (
            self.sets["ambient"] & self.sets["permitted"] & self.sets["inheritable"]
        )
        for number in range(last_capability() + 1):
            if ambient & (1 << number):
                linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, number)


CAPABILITY_NAMES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]  # in kernel order: the index is the capability's number
CAPABILITY_NUMBERS = {
    f"CAP_{name}": number for number, name in enumerate(CAPABILITY_NAMES)
}


def last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPABILITY_NAMES) - 1


def find_executable(name: str, env: list[str], cwd: str) -> str:
    """Resolve NAME as execvp would, with the container's PATH; raise if not executable."""
    if "/" in name:
        candidates = [name if name.startswith("/") else os.path.join(cwd, name)]
    else:
        path = DEFAULT_PATH
        for item in env:
            if item.startswith("PATH="):
                path = item[5:]
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    for candidate in candidates:
        try:
            info = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o111:
            return candidate
    if "/" in name:
        raise SpecError(f'exec: "{name}": no such file or executable in the container')
    raise SpecError(f'exec: "{name}": executable file not found in $PATH')


def _parse_rlimit(entry: dict[str, Any]) -> tuple[str, int, int, int]:
    name = entry.get("type", "")
    kind = getattr(resource, name, None)
    if not name.startswith("RLIMIT_") or kind is None:
        raise SpecError(f"unknown rlimit type {name!r} in process.rlimits")
    return name, kind, int(entry.get("soft", 0)), int(entry.get("hard", 0))


def _describe(exc: BaseException, name: str) -> str:
    if isinstance(exc, OSError):
        return f'exec: "{name}": {exc.strerror}'
    return str(exc)

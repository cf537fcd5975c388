"""Apply an OCI ``process`` object to a freshly forked child and exec it.

The platform forks the child and calls :meth:`ProcessLauncher.exec` in it.
A failure before ``execve`` succeeds is written to a close-on-exec pipe, so
the sandbox can tell "exec failed: no such file" from "the program ran and
exited": the pipe reaches end-of-file with no data exactly when exec worked.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import termios
import stat
from typing import Any, NoReturn

from . import linux
from .sentry import bpf
from .errors import SpecError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EXEC_FAILED = 127


class ProcessLauncher:
    """Carries one OCI process into a child: ids, limits, cwd, env, then execve.

    FOR_EXEC marks a process of ``stockade exec``, so that an error names the
    exec option to fix instead of config.json.
    """

    def __init__(self, process: dict[str, Any], for_exec: bool = False) -> None:
        self.for_exec = for_exec
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
            self.fail(_describe(exc, self.args[0]))

    def fail(self, message: str) -> NoReturn:
        """In the child: send MESSAGE to the sandbox as the exec error and _exit."""
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
        """Apply the settings in the child; raise SpecError naming the step that failed."""
        try:
            self._attach_terminal()
        except OSError as exc:
            raise _step_failed("attach the terminal", exc) from None
        if self.spec_filter and not self.no_new_privileges:
            # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
            # capability sets below may drop, so it goes in first.
            self._load_spec_filter()
        self._set_rlimits()
        if self.oom_score_adj is not None:
            self._set_oom_score_adj()
        self._change_directory()
        if self.umask is not None:
            os.umask(self.umask & 0o777)
        self._set_ids()
        if self.no_new_privileges:
            try:
                linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
            except OSError as exc:
                raise _step_failed("set noNewPrivileges", exc) from None
            if self.spec_filter:
                self._load_spec_filter()  # last, so it cannot stop the set-up above

    def _load_spec_filter(self) -> None:
        try:
            bpf.load(self.spec_filter or b"")
        except OSError as exc:
            raise _step_failed("load the linux.seccomp filter", exc) from None

    def _set_rlimits(self) -> None:
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

    def _set_oom_score_adj(self) -> None:
        path = "/proc/self/oom_score_adj"
        action = f"set oomScoreAdj to {self.oom_score_adj}"
        try:
            with open(path) as f:
                current = f.read().strip()
            with open(path, "w") as f:
                f.write(str(self.oom_score_adj))
        except OSError as exc:
            fix = ""
            if exc.errno == errno.EINVAL:
                fix = "Use a value from -1000 to 1000."
            elif exc.errno in (errno.EACCES, errno.EPERM):
                # The kernel lets a process lower its score only with CAP_SYS_RESOURCE.
                fix = (
                    f"Going below the runtime's own value ({current}) needs "
                    f"CAP_SYS_RESOURCE, which the runtime does not have, so use "
                    f"{current} or more, or leave oomScoreAdj out."
                )
            raise _step_failed(action, exc, fix) from None

    def _change_directory(self) -> None:
        try:
            os.chdir(self.cwd)
        except OSError as exc:
            if self.for_exec:
                where = "for exec"
                fix = (
                    "Pass a directory that exists in the container with --cwd or "
                    "process.cwd."
                )
            else:
                where = "in config.json"
                fix = "Set process.cwd to a directory in the container."
            # runc's wording, which engines and users search for.
            action = f'chdir to cwd ("{self.cwd}") set {where}'
            raise _step_failed(action, exc, fix) from None

    def _set_ids(self) -> None:
        """Drop capabilities, take the user and groups, then set the capability sets."""
        try:
            self.capabilities.drop_bounding()
            linux.prctl(linux.PR_SET_KEEPCAPS, 1)
        except OSError as exc:
            raise _step_failed("drop the bounding capabilities", exc) from None
        unmapped = (
            "The id must be mapped in the container's user namespace "
            "(linux.uidMappings and linux.gidMappings)."
        )
        steps = (
            (f"setgroups to {self.groups}", os.setgroups, (self.groups,)),
            (f"setresgid to {self.gid}", os.setresgid, (self.gid,) * 3),
            (f"setresuid to {self.uid}", os.setresuid, (self.uid,) * 3),
        )
        for action, call, arguments in steps:
            try:
                call(*arguments)
            except OSError as exc:
                fix = unmapped if exc.errno == errno.EINVAL else ""
                raise _step_failed(action, exc, fix) from None
        try:
            self.capabilities.apply()
        except OSError as exc:
            raise _step_failed("set the process.capabilities sets", exc) from None


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


def executable_candidates(name: str, env: list[str], cwd: str) -> list[str]:
    """Return the paths execvp would try for NAME, with the container's PATH."""
    if "/" in name:
        return [name if name.startswith("/") else os.path.join(cwd, name)]
    path = DEFAULT_PATH
    for item in env:
        if item.startswith("PATH="):
            path = item[5:]
    return [os.path.join(d or ".", name) for d in path.split(":")]


def executable_error(name: str, reason: str) -> SpecError:
    """Return the error for NAME not found or not runnable, worded as runc words it.

    Engines look for runc's wording to report a missing command.
    """
    if "/" in name:
        return SpecError(f'exec: "{name}": {reason}')
    return SpecError(f'exec: "{name}": executable file not found in $PATH')


def find_executable(name: str, env: list[str], cwd: str) -> str:
    """Resolve NAME as execvp would, with the container's PATH; raise if not executable."""
    reason = "no such file or directory"
    for candidate in executable_candidates(name, env, cwd):
        try:
            info = os.stat(candidate)
        except OSError as exc:
            reason = f"stat {candidate}: {os.strerror(exc.errno or 0).lower()}"
            continue
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o111:
            return candidate
        reason = "permission denied"
    raise executable_error(name, reason)


def _parse_rlimit(entry: dict[str, Any]) -> tuple[str, int, int, int]:
    name = entry.get("type", "")
    kind = getattr(resource, name, None)
    if not name.startswith("RLIMIT_") or kind is None:
        raise SpecError(f"unknown rlimit type {name!r} in process.rlimits")
    return name, kind, int(entry.get("soft", 0)), int(entry.get("hard", 0))


def _step_failed(action: str, exc: OSError, fix: str = "") -> SpecError:
    """Return the error for a set-up step, in runc's form: ACTION failed: reason."""
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    message = f"{action} failed: {reason}"
    return SpecError(f"{message}. {fix}" if fix else message)


def _describe(exc: BaseException, name: str) -> str:
    """Return the message for a failure in the child.

    Set-up steps raise SpecError with their own wording, so an OSError here comes
    from execve and is reported as an exec error of the program.
    """
    if isinstance(exc, OSError):
        return f'exec: "{name}": {exc.strerror}'
    return str(exc)

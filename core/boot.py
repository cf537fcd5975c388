"""The sandbox process: it builds the container's world and runs the application.

It is forked from ``stockade create`` and is PID 1 of the container's new PID
namespace. Boot order: close inherited descriptors, enter or create the
namespaces, let the platform import what it needs, build the root with the
file-access provider, set the hostname, check the executable, report ready.
Then it serves the control socket until ``start`` and hands the application to
the platform. It exits with the application's exit status (128+N when the
application was killed by signal N), so an engine that reaps it gets that status.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from typing import Any, NoReturn

from . import control, execd, linux, ocihooks
from .sentry import oci_seccomp
from .errors import SandboxError, SpecError, StockadeError
from .process import EXEC_FAILED, ProcessLauncher, find_executable
from .providers import FILE_ACCESS, PLATFORM, Container
from .spec import check_process
from .state import PROBLEM_FILE

NAMESPACE_FLAGS = {
    "mount": linux.CLONE_NEWNS,
    "uts": linux.CLONE_NEWUTS,
    "ipc": linux.CLONE_NEWIPC,
    "network": linux.CLONE_NEWNET,
    "cgroup": linux.CLONE_NEWCGROUP,
}
# Signals whose default action ends a process: a created container that
# receives one stops, as an init process waiting to start would.
TERMINATING = {
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGILL, signal.SIGABRT,
    signal.SIGFPE, signal.SIGKILL, signal.SIGSEGV, signal.SIGPIPE, signal.SIGALRM,
    signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGBUS, signal.SIGSYS,
    signal.SIGTRAP, signal.SIGXCPU, signal.SIGXFSZ, signal.SIGVTALRM, signal.SIGPROF,
}  # fmt: skip
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)  # fmt: skip


class Sandbox:
    """The state of the running sandbox process."""

    def __init__(
        self, container: Container, listener: socket.socket, state_fd: int
    ) -> None:
        self.container = container
        self.listener = listener
        self.state_fd = state_fd
        self.platform = container.providers[PLATFORM]
        self.init_pid = 0
        self.placed = False  # in its cgroups: see _await_placed
        # A wait status to exit with once the current reply has been sent.
        self.pending_exit: int | None = None
        # Held while a request is handled, and by exit_with, so the process
        # never exits between carrying out a request and replying to it.
        self.reply_lock = threading.RLock()
        self.broker: execd.ExecBroker | None = None
        self.spec_filter: bytes | None = None
        container.note_problem = self.note_problem

    # --- boot -------------------------------------------------------------------

    def boot(self, report: socket.socket) -> None:
        container = self.container
        enter_namespaces(container)
        if container.spec.hostname and _has_namespace(container, "uts"):
            linux.sethostname(container.spec.hostname)
        domain = container.spec.raw.get("domainname")
        if domain and _has_namespace(container, "uts"):
            linux.setdomainname(domain)
        container.syscall_hooks = prepare_sandbox_plugins(container)
        self.platform.prepare(container)
        profile = container.spec.linux.get("seccomp")
        # Compiled before pivot_root: libseccomp and the cache are host files.
        self.spec_filter = oci_seccomp.program(profile) if profile else None
        container.before_pivot = lambda: self._run_create_hooks(report)
        container.providers[FILE_ACCESS].setup_root(container)
        self._await_placed(report)
        self.launcher = ProcessLauncher(container.spec.process)
        self.launcher.spec_filter = self.spec_filter
        check = getattr(container.providers[FILE_ACCESS], "check_process", None)
        if check is not None:
            check(container, self.launcher)
        else:
            make_cwd(self.launcher.cwd)
            find_executable(self.launcher.args[0], self.launcher.env, self.launcher.cwd)
        if container.spec.process.get("terminal"):
            # Opened after pivot_root, so the pty belongs to the container's devpts.
            master, self.launcher.terminal_fd = os.openpty()
            control.send(report, {"op": "ready"}, [master])
            os.close(master)
            # The application's stdio is the pty, so the sandbox drops the stdio it
            # inherited from `create`, as runc's init does. containerd's shim reads
            # the output of `create` until EOF and would otherwise wait here.
            _release_stdio()
        else:
            control.send(report, {"op": "ready"})
        report.close()

    def _run_create_hooks(self, report: socket.socket) -> None:
        """Let the CLI run prestart and createRuntime, then run createContainer here.

        This runs in the container's namespaces after the mounts and before
        pivot_root, which is where the OCI runtime specification places them.
        """
        self._await_placed(report)
        raw = self.container.spec.raw
        if not any(ocihooks.hooks_of(raw, k) for k in ocihooks.CREATE_KINDS):
            return
        control.send(report, {"op": "hooks"})
        reply, _ = control.receive(report)
        if reply is None or reply.get("op") != "continue":
            raise SandboxError("create hooks failed on the host")
        ocihooks.run(raw, "createContainer", reply["state"])

    def _await_placed(self, report: socket.socket) -> None:
        """Wait until the CLI has put this process in its cgroups; once is enough.

        The hooks must see the container's cgroups, and a new cgroup
        namespace takes the cgroups of its creator as its root.
        """
        if self.placed:
            return
        reply, _ = control.receive(report)
        if reply is None or reply.get("op") != "placed":
            raise SandboxError("the runtime did not put the sandbox in its cgroups")
        enter_cgroup_namespace(self.container)
        self.placed = True

    # --- serving ----------------------------------------------------------------

    def serve_until_started(self) -> NoReturn:
        for sig in FORWARDED:
            signal.signal(sig, self._on_signal_created)
        while True:
            conn, _ = self.listener.accept()
            if self._handle(conn):
                break
        for sig in FORWARDED:
            signal.signal(sig, self._forward_signal)
        self._start_exec_launcher()
        threading.Thread(target=self._serve_forever, daemon=True).start()
        status = self.platform.run(self.container, self.init_pid)
        self.exit_with(status)

    def _start_exec_launcher(self) -> None:
        """Start the process that forks exec processes, while this one may still fork."""
        ours, theirs = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
        )

        def launcher_main() -> None:
            for item in (self.listener, ours):
                item.close()
            os.close(self.state_fd)
            execd.serve(theirs, self.platform.prepare_exec_child, self.spec_filter)

        self.platform.spawn_helper(self.container, launcher_main)
        theirs.close()
        self.broker = execd.ExecBroker(ours)
        threading.Thread(target=self.broker.read_forever, daemon=True).start()

    def _serve_forever(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> bool:
        """Handle one request and close CONN; return True once the application started."""
        try:
            message, fds = control.receive(conn)
        except StockadeError as exc:
            _reply_and_close(conn, {"ok": False, "error": str(exc)})
            return False
        if message is None:
            conn.close()
            return False
        if message.get("op") == "exec":
            self._exec(conn, message, fds)  # the broker keeps CONN until the exit
            return False
        for fd in fds:
            os.close(fd)
        with self.reply_lock:
            started = self._answer(conn, message)
        conn.close()
        return started

    def _exec(
        self, conn: socket.socket, message: dict[str, Any], fds: list[int]
    ) -> None:
        try:
            if self.broker is None:
                raise SandboxError(f"container {self.container.id} is not running")
            process = message.get("process")
            if not isinstance(process, dict):
                raise SandboxError("exec request without a process object")
            check_process(process, "exec process")
            self.broker.submit(conn, process, fds)
        except StockadeError as exc:
            _reply_and_close(conn, {"ok": False, "error": str(exc)})
        finally:
            for fd in fds:
                os.close(fd)

    def _answer(self, conn: socket.socket, message: dict[str, Any]) -> bool:
        started = False
        try:
            reply, started = self._dispatch(message)
        except StockadeError as exc:
            reply = {"ok": False, "error": str(exc)}
        except OSError as exc:
            reply = {"ok": False, "error": f"{exc.strerror or exc}"}
        try:
            control.send(conn, reply)
        except OSError:
            pass
        if self.pending_exit is not None:
            self.exit_with(self.pending_exit)
        return started

    def _dispatch(self, message: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        op = message.get("op")
        if op == "start":
            if self.init_pid:
                raise SandboxError(f"container {self.container.id} has already started")
            try:
                state = message.get("state") or {}
                ocihooks.run(self.container.spec.raw, "startContainer", state)
                self.init_pid = self.platform.launch(self.container, self.launcher)
            except StockadeError:
                self.pending_exit = EXEC_FAILED << 8  # as if the init exited with 127
                raise
            return {"ok": True, "pid": self.init_pid}, True
        if op == "kill":
            self.kill(int(message["signal"]), bool(message.get("all")))
            return {"ok": True}, False
        if op == "status":
            return {"ok": True, "started": bool(self.init_pid)}, False
        raise SandboxError(f"unknown control operation {op!r}")

    # --- signals and exit ---------------------------------------------------------

    def kill(self, sig: int, all_processes: bool) -> None:
        if not self.init_pid:
            if sig in TERMINATING:
                self.pending_exit = sig  # the wait status of a process killed by SIG
            return
        if all_processes:
            # From PID 1 this reaches every process in the namespace, and in the
            # application's own namespace nested in it. In a namespace joined by
            # path it would reach other containers too, so there `kill --all`
            # signals the container's processes from the CLI instead.
            os.kill(-1, sig)
        else:
            os.kill(self.init_pid, sig)

    def _on_signal_created(self, sig: int, _frame: Any) -> None:
        if sig in TERMINATING:
            self.exit_with(sig)

    def _forward_signal(self, sig: int, _frame: Any) -> None:
        if self.init_pid:
            try:
                os.kill(self.init_pid, sig)
            except ProcessLookupError:
                pass

    def note_problem(self, text: str) -> None:
        """Record TEXT in the state directory, where `state` reports it."""
        try:
            fd = os.open(
                PROBLEM_FILE,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                0o644,
                dir_fd=self.state_fd,
            )
            try:
                os.write(fd, text.encode()[:4000])
            finally:
                os.close(fd)
        except OSError:
            pass

    def exit_with(self, status: int) -> NoReturn:
        """Record the application's wait status in the state directory, then exit with it."""
        self.reply_lock.acquire()  # never released: the process ends below
        code = exit_code(status)
        record = {"exit_code": code, "status": status}
        try:
            fd = os.open(
                "exit.json.tmp",
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                0o644,
                dir_fd=self.state_fd,
            )
            os.write(fd, json.dumps(record).encode())
            os.close(fd)
            os.rename(
                "exit.json.tmp",
                "exit.json",
                src_dir_fd=self.state_fd,
                dst_dir_fd=self.state_fd,
            )
        except OSError:
            pass  # the state directory may already be gone after a forced delete
        os._exit(code)


SYSCALL_HOOKS = ("stockade_syscall", "stockade_syscall_result")


def prepare_sandbox_plugins(container: Container) -> dict[str, list[Any]]:
    """Call each plugin's stockade_sandbox_prepare; return the syscall hooks wanted.

    The result maps each syscall hook to the implementing functions, in call
    order, of the plugins that asked for it. The platform calls them directly:
    a mediated call is the hot path, and most containers want none.
    """
    if container.hook is None:
        return {name: [] for name in SYSCALL_HOOKS}
    wanted: dict[str, set[str] | None] = {}
    for impl in reversed(container.hook.stockade_sandbox_prepare.get_hookimpls()):
        result = impl.function(container=container)
        wanted[impl.plugin_name] = None if result is None else set(result)
    hooks: dict[str, list[Any]] = {}
    for name in SYSCALL_HOOKS:
        impls = reversed(getattr(container.hook, name).get_hookimpls())
        hooks[name] = [
            impl.function
            for impl in impls
            if wanted.get(impl.plugin_name) is None or name in wanted[impl.plugin_name]
        ]
    return hooks


def make_cwd(path: str) -> None:
    """Create a missing working directory inside the container, as runc does."""
    if os.path.isdir(path):
        return
    try:
        os.makedirs(path, 0o755)
    except OSError as exc:
        raise SpecError(
            f"process.cwd {path} does not exist and cannot be created: {exc.strerror}"
        ) from None


def _reply_and_close(conn: socket.socket, reply: dict[str, Any]) -> None:
    try:
        control.send(conn, reply)
    except OSError:
        pass
    conn.close()


def exit_code(status: int) -> int:
    """Turn a wait status into a shell-style exit code (128+N for signal N)."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + status if 0 < status < 65 else 255


def enter_namespaces(container: Container) -> None:
    """Join the namespaces that have a path, then create the rest in one unshare."""
    flags = 0
    for namespace in container.namespaces:
        flag = NAMESPACE_FLAGS.get(namespace.type)
        if flag is None:
            continue  # pid and user were handled before this process was forked
        if namespace.type == "cgroup" and not namespace.path:
            continue  # made in enter_cgroup_namespace, once the cgroups are joined
        if namespace.path:
            fd = os.open(namespace.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                linux.setns(fd, flag)
            except OSError as exc:
                raise SandboxError(
                    f"cannot join {namespace.type} namespace {namespace.path}: {exc.strerror}"
                ) from None
            finally:
                os.close(fd)
        else:
            flags |= flag
    if flags:
        linux.unshare(flags)


def enter_cgroup_namespace(container: Container) -> None:
    """Create the new cgroup namespace, rooted at the cgroups the sandbox is in now."""
    if any(n.type == "cgroup" and not n.path for n in container.namespaces):
        linux.unshare(linux.CLONE_NEWCGROUP)


def _has_namespace(container: Container, kind: str) -> bool:
    return any(n.type == kind for n in container.namespaces)


def _release_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def close_inherited_fds(keep: set[int]) -> None:
    """Close every descriptor above stderr that boot did not open (engines leak some)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def main(
    container: Container, report: socket.socket, listener: socket.socket, state_fd: int
) -> NoReturn:
    """Entry point of the forked sandbox process; never returns."""
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write("stockade-sandbox")
    except OSError:
        pass
    # Not dumpable: /proc/1/mem, /proc/1/fd and the like stay closed to the application.
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    linux.wipe_environment_block()
    # The CLI's log handlers point at descriptors that are about to be closed.
    logging.getLogger("stockade").handlers.clear()
    sandbox = Sandbox(container, listener, state_fd)
    try:
        keep = {report.fileno(), listener.fileno(), state_fd, *container.inherit_fds}
        close_inherited_fds(keep)
        sandbox.boot(report)
    except BaseException as exc:
        reason = str(exc) if isinstance(exc, StockadeError) else _describe(exc)
        try:
            control.send(report, {"op": "error", "error": reason})
        except OSError:
            pass
        os._exit(1)
    try:
        sandbox.serve_until_started()
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        os._exit(255)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return f"{type(exc).__name__}: {exc}"

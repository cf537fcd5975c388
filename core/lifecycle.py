"""The container lifecycle as seen from the host: create, start, kill, delete, run.

Each operation loads the container's state under its lock, calls the hooks of
its step, and saves the new state. ``create`` keeps an undo stack: any error
after the state directory exists destroys what was made, so a failed create
leaves no process, mount or directory behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
from typing import Any

from . import cgroups, control, hookspecs, ocihooks, sandbox
from . import spec as spec_module
from .config import Settings
from .errors import (
    ConfigError,
    DamagedStateError,
    NotFoundError,
    SandboxError,
    StockadeError,
    WrongStatusError,
    container_not_found,
    container_not_running,
)
from .pluginmanager import PluginManager
from .providers import KINDS, PLATFORM, Container, Namespace
from .state import (
    CREATED,
    CREATING,
    EXIT_FILE,
    PAUSED,
    RUNNING,
    STOPPED,
    State,
    Store,
    now,
    write_atomic,
)

log = logging.getLogger("stockade")

KILL_TIMEOUT = 10.0
SELECTED = ("platform", "file_access", "network")
# linux.resources keys that set limits; a spec asking for any needs cgroups.
LIMITED_RESOURCES = ("memory", "cpu", "pids", "blockIO")


class Runtime:
    """The lifecycle operations for one ``--root``, with plugins loaded."""

    def __init__(self, settings: Settings, manager: PluginManager) -> None:
        self.settings = settings
        self.manager = manager
        self.store = Store(settings.root)

    # --- create -----------------------------------------------------------------

    def create(
        self,
        container_id: str,
        bundle: str,
        pid_file: str | None = None,
        spec: spec_module.Spec | None = None,
        console_socket: str | None = None,
    ) -> Container:
        log.debug("create %s from bundle %s", container_id, bundle)
        self.store.path(container_id)  # validates the id before anything else
        spec = spec or spec_module.load(bundle)
        _check_console(spec, console_socket)
        ignored = spec_module.not_applied(spec.raw)
        if ignored:
            log.warning(
                "container %s: config.json sets %s, which this version does not apply yet",
                container_id,
                ", ".join(ignored),
            )
        container = self._new_container(container_id, spec)
        sandbox.check_reachable(
            container, spec.root_path, "the rootfs",
            "move the bundle to a directory it can reach",
        )
        container.providers[PLATFORM].check(container)
        self.manager.pre_create(container)

        container.state_dir = self.store.reserve(container_id)
        with contextlib.ExitStack() as undo:
            undo.callback(self._destroy_failed, container)
            with self.store.locked(container_id):
                state = self._new_state(container)
                self.store.save(state)
                self.manager.namespaces(container)
                state.namespaces = [dataclasses.asdict(n) for n in container.namespaces]
                self.manager.file_access(container)
                self._save_progress(state, container)

                def place(pid: int) -> None:
                    # Joining the cgroups took 25 ms on the test machines, a
                    # third of it in one write to cgroup.procs. It runs while
                    # the sandbox boots, not after.
                    container.sandbox_pid = pid
                    # Saved first, so that a delete after a killed create
                    # finds the sandbox and the cgroups it joins.
                    state.cgroup = container.cgroup = cgroups.relative_path(
                        container.id, container.spec.linux.get("cgroupsPath")
                    )
                    self._save_progress(state, container)
                    state.cgroup = container.cgroup = self._join_cgroups(container)

                container.sandbox_pid, terminal = sandbox.spawn(
                    container, self.settings.boot_timeout, place
                )
                if terminal is not None:
                    _send_terminal(console_socket, terminal)
                if container.cgroup:
                    # Written once the sandbox's /dev is complete: the rules
                    # bind the application, not the runtime's own set-up.
                    self._restrict_devices(container)
                self._save_progress(state, container)
                self.manager.network(container)
                state.status = CREATED
                self._save_progress(state, container)
                # Engines treat create as done once the pid file exists, so it is written last.
                if pid_file:
                    _write_pid_file(pid_file, container.sandbox_pid)
            undo.pop_all()
        return container

    def _new_container(self, container_id: str, spec: spec_module.Spec) -> Container:
        settings = self.settings
        providers = {
            kind: self.manager.provider(
                kind, getattr(settings, kind), settings.origin.get(kind, "")
            )
            for kind in KINDS
        }
        for kind, provider in list(providers.items()):
            if settings.origin.get(kind) != "default":
                continue
            check = getattr(provider, "unsupported", None)
            fallback = getattr(provider, "fallback", None)
            reason = check(spec) if check is not None and fallback else None
            if reason:
                option = "--" + kind.replace("_", "-")
                log.warning(
                    "container %s: the default %s %s %s, so it uses %s; pass "
                    "%s=%s to choose that and silence this warning",
                    container_id, option, provider.name, reason, fallback, option,
                    fallback,
                )  # fmt: skip
                providers[kind] = self.manager.provider(kind, fallback)
                settings = dataclasses.replace(settings, **{kind: fallback})
        namespaces = [
            Namespace(entry["type"], entry.get("path") or None)
            for entry in spec.linux.get("namespaces") or []
        ]
        return Container(
            id=container_id,
            bundle=spec.bundle,
            spec=spec,
            settings=settings,
            state_dir="",
            namespaces=namespaces,
            providers=providers,
            hook=self.manager.hook,
            annotations=dict(spec.annotations),
        )

    def _join_cgroups(self, container: Container) -> str:
        """Put the sandbox in its cgroups with the spec's limits; return their path."""
        linux_section = container.spec.linux
        relative = cgroups.relative_path(container.id, linux_section.get("cgroupsPath"))
        resources = linux_section.get("resources") or {}
        # Recorded before the directories exist, so that a failed create
        # removes the ones made before the host rejected a limit.
        container.cgroup = relative
        try:
            not_applied = cgroups.create(relative, resources, container.sandbox_pid)
        except cgroups.CgroupError as exc:
            limited = [key for key in LIMITED_RESOURCES if resources.get(key)]
            if limited:
                raise
            # Without limits, a host that refuses cgroups only costs pause, stats and
            # the device list, which the refused mknod and the nodev rootfs back up.
            log.warning("container %s: running without cgroups: %s", container.id, exc)
            not_applied = {}
            if resources.get("devices") is not None:
                not_applied["linux.resources.devices"] = "the container has no cgroups"
            cgroups.destroy(relative)
            relative = container.cgroup = ""
        for key, reason in not_applied.items():
            log.warning(
                "container %s: %s is not applied: %s. The application can still open "
                "the device nodes it reaches, such as the defaults and linux.devices "
                "in /dev, but it cannot create new ones",
                container.id,
                key,
                reason,
            )
        return relative

    def _restrict_devices(self, container: Container) -> None:
        """Write the spec's device rules; warn instead when the host rejects them.

        As with the other cgroup settings, a host that rejects them fails
        create only when the spec also sets limits.
        """
        resources = container.spec.linux.get("resources") or {}
        try:
            cgroups.restrict_devices(container.cgroup, resources)
        except cgroups.CgroupError as exc:
            if any(resources.get(key) for key in LIMITED_RESOURCES):
                raise
            log.warning(
                "container %s: linux.resources.devices is not applied: %s. The "
                "application can still open the device nodes it reaches, such as "
                "the defaults and linux.devices in /dev, but it cannot create new ones",
                container.id,
                exc,
            )
            for error in cgroups.reset_devices(container.cgroup):
                log.warning("container %s: %s", container.id, error)

    def _new_state(self, container: Container) -> State:
        return State(
            id=container.id,
            bundle=container.bundle,
            rootfs=container.spec.root_path,
            status=CREATING,
            created=now(),
            annotations=container.annotations,
            settings={key: getattr(container.settings, key) for key in SELECTED},
            spec=container.spec.raw,
        )

    def _save_progress(self, state: State, container: Container) -> None:
        state.pid = container.sandbox_pid
        if state.pid and not state.pid_start_time:
            state.pid_start_time = _start_time(state.pid)
        state.plugin_state = container.plugin_state
        self.store.save(state)

    def _destroy_failed(self, container: Container) -> None:
        log.debug("create %s failed; destroying what was made", container.id)
        errors = self._destroy(
            container, container.sandbox_pid, _start_time(container.sandbox_pid)
        )
        for error in errors:
            log.warning("cleanup after failed create of %s: %s", container.id, error)

    # --- loading ------------------------------------------------------------------

    def load(self, container_id: str) -> tuple[State, Container]:
        state = self.store.load(container_id)
        spec = spec_module.Spec(raw=state.spec, bundle=state.bundle)
        settings = dataclasses.replace(self.settings, **state.settings)
        providers = {}
        for kind in KINDS:
            try:
                providers[kind] = self.manager.provider(kind, state.settings[kind])
            except StockadeError as exc:
                log.warning("container %s: %s", container_id, exc)
        container = Container(
            id=state.id,
            bundle=state.bundle,
            spec=spec,
            settings=settings,
            state_dir=self.store.path(container_id),
            namespaces=[Namespace(**n) for n in state.namespaces],
            sandbox_pid=state.pid,
            providers=providers,
            hook=self.manager.hook,
            plugin_state=state.plugin_state,
            cgroup=state.cgroup,
            annotations=state.annotations,
        )
        return state, container

    def state(self, container_id: str) -> dict[str, Any]:
        return self.store.load(container_id).oci()

    def list(self) -> list[dict[str, Any]]:
        documents = []
        for container_id in self.store.ids():
            try:
                documents.append(self.store.load(container_id).oci())
            except (StockadeError, ValueError):
                continue  # deleted or half-written while listing
        return documents

    # --- start, kill ----------------------------------------------------------------

    def start(self, container_id: str) -> None:
        log.debug("start %s", container_id)
        with self.store.locked(container_id):
            state, container = self.load(container_id)
            _require_status(
                container_id, state.current_status(), CREATED, "start",
                "and only a created container can start",
            )  # fmt: skip
            self.manager.start(container)
            state.status = RUNNING
            self.store.save(state)
            ocihooks.run(
                container.spec.raw, "poststart", sandbox.hook_state(container, RUNNING)
            )

    def kill(self, container_id: str, sig: int, all_processes: bool = False) -> None:
        log.debug("kill %s with signal %d", container_id, sig)
        state, container = self.load(container_id)
        status = state.current_status()
        if status == PAUSED and sig == signal.SIGKILL:
            # Frozen, the sandbox cannot reply on its control socket.
            os.kill(state.pid, signal.SIGKILL)
            cgroups.freeze(container.cgroup, False)
            return
        if status == PAUSED:
            raise WrongStatusError(
                f"container {container_id} is paused: resume it first, or send KILL"
            )
        if status not in (CREATED, RUNNING):
            raise container_not_running(container_id)
        if all_processes and status == RUNNING and _joins_pid_namespace(container):
            # The sandbox's kill(-1) would reach every container that shares
            # the namespace, so only this container's processes are signalled.
            for pid in sandbox.application_pids(state.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            return
        try:
            request = {"op": "kill", "signal": sig, "all": all_processes}
            control.request(container.state_dir, request)
        except SandboxError:
            if sig != signal.SIGKILL or not state.sandbox_alive():
                raise
            os.kill(
                state.pid, signal.SIGKILL
            )  # the sandbox hangs; end it and everything in it

    # --- pause, resume ----------------------------------------------------------

    def pause(self, container_id: str, paused: bool) -> None:
        """Freeze (PAUSED true) or thaw every process of the container."""
        with self.store.locked(container_id):
            state, container = self.load(container_id)
            expected = RUNNING if paused else PAUSED
            _require_status(
                container_id, state.current_status(), expected,
                "pause" if paused else "resume", f"not {expected}",
            )  # fmt: skip
            if not container.cgroup:
                raise WrongStatusError(
                    f"container {container_id} has no cgroup to freeze"
                )
            cgroups.freeze(container.cgroup, paused)
            state.status = PAUSED if paused else RUNNING
            self.store.save(state)

    def stats(self, container_id: str) -> dict[str, Any]:
        state, container = self.load(container_id)
        if not state.sandbox_alive():
            raise container_not_running(container_id)
        if container.cgroup:
            return cgroups.stats(container.cgroup)
        return {}

    # --- exec -----------------------------------------------------------------------

    def exec(self, container_id: str, process: dict[str, Any], detach: bool = False,
             pid_file: str | None = None, console_socket: str | None = None) -> int:  # fmt: skip
        """Run PROCESS in the running container; return its exit code (0 if detached).

        With DETACH, a waiter process stays behind whose exit status is the
        process's, and PID_FILE names the waiter, so an engine can reap it.
        """
        log.debug("exec in %s: %s", container_id, process.get("args"))
        state, container = self.load(container_id)
        _require_status(
            container_id, state.current_status(), RUNNING, "exec in",
            "and exec needs a running container",
        )  # fmt: skip
        terminal = bool(process.get("terminal"))
        if terminal != bool(console_socket):
            raise ConfigError(
                "exec --tty and --console-socket go together: the pty master is sent "
                "to the console socket"
            )
        try:
            conn, reply, received = control.open_exec(
                container.state_dir, process, [0, 1, 2]
            )
        except SandboxError:
            # A dead gofer fails the exec with EIO at its first file call, and
            # the error would then blame the cwd. The sandbox records the
            # gofer's exit before it fails the call.
            problem = self.store.load(container_id).problem
            if not problem:
                raise
            raise SandboxError(
                f"cannot exec in container {container_id}: {problem}; "
                f"remove it with `stockade delete --force {container_id}` and "
                "create it again"
            ) from None
        if received:
            _send_terminal(console_socket, received[0])
        if detach:
            waiter = os.fork()
            if waiter == 0:
                _become_waiter(conn)
            conn.close()
            if pid_file:
                _write_pid_file(pid_file, waiter)
            return 0
        target = sandbox.host_pid(state.pid, int(reply["pid"]))
        if pid_file:
            _write_pid_file(pid_file, target)
        with _forward_signals(target):
            return _await_exec_exit(conn)

    # --- delete ---------------------------------------------------------------------

    def delete(self, container_id: str, force: bool = False) -> None:
        log.debug("delete %s (force=%s)", container_id, force)
        if not self.store.exists(container_id):
            if force:
                self.store.remove(container_id)
                return
            raise container_not_found(container_id)
        try:
            with self.store.locked(container_id):
                self._delete_locked(container_id, force)
        except NotFoundError:
            if not force:
                raise  # with --force, a concurrent delete that won is success
        except DamagedStateError:
            if not force:
                raise
            # NOTE: without a readable state the sandbox's pid is unknown, so a
            # sandbox that still runs is left running; its directory is removed.
            log.warning("container %s: removing damaged state", container_id)
            self.store.remove(container_id)

    def _delete_locked(self, container_id: str, force: bool) -> None:
        state, container = self.load(container_id)
        status = state.current_status()
        if status not in (STOPPED, CREATED) and not force:
            raise WrongStatusError(
                f"cannot delete container {container_id} that is not stopped: {status}; "
                f"stop it first or use delete --force"
            )
        errors = self._destroy(container, state.pid, state.pid_start_time)
        if errors:
            raise StockadeError(
                f"container {container_id} deleted with errors: " + "; ".join(errors)
            )

    def _destroy(
        self, container: Container, pid: int, start_time: int | None
    ) -> list[str]:
        """End the sandbox, run the teardown hooks, remove the state; never stop early."""
        errors = []
        if container.cgroup:
            try:
                cgroups.freeze(container.cgroup, False)  # a frozen process cannot die
            except cgroups.CgroupError:
                pass
        if pid > 0 and start_time and _start_time(pid) == start_time:
            try:
                os.kill(pid, signal.SIGKILL)
                if not sandbox.wait_for_exit(pid, KILL_TIMEOUT):
                    errors.append(
                        f"sandbox process {pid} did not exit within {KILL_TIMEOUT:g}s"
                    )
            except ProcessLookupError:
                pass
        _reap(pid)
        if container.cgroup:
            errors += cgroups.destroy(container.cgroup)
        errors += self.manager.teardown(container, hookspecs.TEARDOWN_HOOKS[:-1])
        if container.state_dir:
            self.store.remove(container.id)
        stopped = sandbox.hook_state(container, STOPPED)
        ocihooks.run(
            container.spec.raw, "poststop", stopped
        )  # never raises: warnings only
        errors += self.manager.teardown(container, hookspecs.TEARDOWN_HOOKS[-1:])
        return errors

    # --- wait, run --------------------------------------------------------------------

    def wait(self, container_id: str) -> int:
        """Block until the container's sandbox exits; return the application's exit code."""
        state = self.store.load(container_id)
        directory = self.store.path(container_id)
        if state.sandbox_alive():
            sandbox.wait_for_exit(state.pid)
            _reap(state.pid)
        return read_exit_code(directory)

    def run(self, container_id: str, bundle: str, pid_file: str | None = None,
            detach: bool = False, spec: spec_module.Spec | None = None,
            console_socket: str | None = None) -> int:  # fmt: skip
        container = self.create(container_id, bundle, pid_file, spec, console_socket)
        try:
            self.start(container_id)
        except BaseException:
            self._quiet_delete(container_id)
            raise
        if detach:
            return 0
        with _forward_signals(container.sandbox_pid):
            code = _wait_child(container.sandbox_pid)
        self._quiet_delete(container_id)
        return code

    def _quiet_delete(self, container_id: str) -> None:
        try:
            self.delete(container_id, force=True)
        except StockadeError as exc:
            log.warning("%s", exc)


def _require_status(
    container_id: str, status: str, expected: str, action: str, requirement: str
) -> None:
    """Raise WrongStatusError unless STATUS is EXPECTED, for the command ACTION."""
    if status != expected:
        raise WrongStatusError(
            f"cannot {action} container {container_id}: its status is {status}, "
            f"{requirement}"
        )


def _check_console(spec: spec_module.Spec, console_socket: str | None) -> None:
    """Pair process.terminal with --console-socket, as runc does."""
    terminal = bool(spec.process.get("terminal"))
    if terminal and not console_socket:
        raise ConfigError(
            "process.terminal is true, so pass --console-socket: the pty master is "
            "sent there"
        )
    if console_socket and not terminal:
        raise ConfigError(
            f"--console-socket {console_socket} needs process.terminal set to true"
        )


def _send_terminal(path: str | None, master: int) -> None:
    """Send the pty master to the console socket, as runc does, then close it."""
    import array
    import socket as socket_module

    try:
        with socket_module.socket(
            socket_module.AF_UNIX, socket_module.SOCK_STREAM
        ) as sock:
            sock.connect(path or "")
            rights = array.array("i", [master])
            sock.sendmsg(
                [b"/dev/ptmx"],
                [(socket_module.SOL_SOCKET, socket_module.SCM_RIGHTS, rights)],
            )
    except OSError as exc:
        raise ConfigError(
            f"cannot send the terminal to --console-socket {path}: {exc.strerror or exc}"
        ) from None
    finally:
        os.close(master)


def _write_pid_file(path: str, pid: int) -> None:
    try:
        write_atomic(os.path.abspath(path), str(pid))
    except OSError as exc:
        raise ConfigError(
            f"cannot write pid file {path}: {exc.strerror}; check that its directory "
            f"exists and is writable"
        ) from None


def _await_exec_exit(conn: Any) -> int:
    from .boot import exit_code

    try:
        message, _ = control.receive(conn)
    except (StockadeError, OSError):
        message = None
    finally:
        conn.close()
    if message is None or message.get("op") != "exited":
        return 128 + signal.SIGKILL  # the sandbox ended, and the process with it
    return exit_code(int(message["status"]))


def _become_waiter(conn: Any) -> None:
    """In the forked waiter: let go of the engine's stdio, then exit as the process did."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os._exit(_await_exec_exit(conn))


def _joins_pid_namespace(container: Container) -> bool:
    """Return whether CONTAINER shares a PID namespace that its spec names by path."""
    return any(
        namespace.type == "pid" and namespace.path for namespace in container.namespaces
    )


def read_exit_code(state_dir: str) -> int:
    try:
        with open(os.path.join(state_dir, EXIT_FILE), "rb") as f:
            return int(json.load(f)["exit_code"])
    except (OSError, ValueError, KeyError):
        return 255


def _start_time(pid: int) -> int | None:
    from .linux import process_start_time

    return process_start_time(pid) if pid > 0 else None


def _reap(pid: int) -> None:
    if pid <= 0:
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _wait_child(pid: int) -> int:
    from .boot import exit_code

    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 255
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            return exit_code(status)


@contextlib.contextmanager
def _forward_signals(pid: int):  # type: ignore[no-untyped-def]
    """Pass the signals a terminal or supervisor sends to this command on to PID."""
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                 signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)  # fmt: skip

    def forward(sig: int, _frame: Any) -> None:
        if pid > 0:  # 0 would signal this command's own process group
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    previous = {sig: signal.signal(sig, forward) for sig in forwarded}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

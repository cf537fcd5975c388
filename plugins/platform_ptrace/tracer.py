"""The sentry's tracer: every application process is a PTRACE_SEIZEd child.

The application runs under a seccomp filter built from the syscall policy.
Passthrough calls never stop. Denied calls fail in the kernel. Mediated calls
stop with PTRACE_EVENT_SECCOMP, and this loop decides them: the sentry's own
rules first (no new namespaces, no untraced children, no signals to the
sentry), then the plugins' ``stockade_syscall`` hook.

When a plugin decides on a path or a socket address, the decision reads the
application's memory, and the kernel reads it again when the call runs.
Another thread could rewrite it in between. So, while such a decision is made,
every other application process is stopped, and they stay stopped until the
call has left the kernel.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import threading
import time
from typing import Any, TextIO

from stockade import linux, pidns
from stockade.errors import SandboxError
from stockade.process import CAPABILITY_NUMBERS, last_capability
from stockade.providers import ChildSetup, Container
from stockade.sentry import bpf, notify, oci_seccomp
from stockade.sentry import ptrace_raw as pt
from stockade.sentry.calls import SyscallCall, signed, signed32
from stockade.sentry.policy import Policy, SyscallClass, policy_from_table
from stockade.sentry.syscalls import SYSCALLS, ArgKind, number

OPTIONS = (
    pt.PTRACE_O_TRACESYSGOOD | pt.PTRACE_O_TRACEFORK | pt.PTRACE_O_TRACEVFORK
    | pt.PTRACE_O_TRACECLONE | pt.PTRACE_O_TRACEEXEC | pt.PTRACE_O_TRACESECCOMP
    | pt.PTRACE_O_EXITKILL
)  # fmt: skip
NEW_PROCESS_EVENTS = (
    pt.PTRACE_EVENT_FORK,
    pt.PTRACE_EVENT_VFORK,
    pt.PTRACE_EVENT_CLONE,
)
STOP_SIGNALS = (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
MEMORY_KINDS = (ArgKind.PATH, ArgKind.STR, ArgKind.ARGV, ArgKind.SOCKADDR)

# clone flags the application may not use: new namespaces would let it leave
# the sandbox's view, and CLONE_UNTRACED would start a child the sentry cannot see.
CLONE_UNTRACED = 0x00800000
CLONE_FORBIDDEN = 0x7E020000 | CLONE_UNTRACED
NR_CLONE, NR_CLONE3 = number("clone"), number("clone3")
NR_SECCOMP, NR_MKNOD, NR_MKNODAT = number("seccomp"), number("mknod"), number("mknodat")
NR_PRCTL = number("prctl")
NR_KILL = number("kill")
NR_PIDFD_SEND_SIGNAL = number("pidfd_send_signal")
EXEC_CALLS = frozenset({number("execve"), number("execveat")})
SOCKET_CALLS = frozenset({number("bind"), number("connect")})
SECCOMP_SET_MODE_FILTER, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 1, 22, 2
SECCOMP_FILTER_FLAG_NEW_LISTENER = 0x8
S_IFMT, S_IFCHR, S_IFBLK = 0o170000, 0o020000, 0o060000
# Arguments that name a process: a call aimed at the sandbox or its helpers fails.
PID_ARGUMENTS = {
    entry.nr: tuple(i for i, kind in enumerate(entry.args) if kind is ArgKind.PID)
    for entry in SYSCALLS.values()
    if ArgKind.PID in entry.args
}
PID_ARGUMENTS[number("setpriority")] = (1,)  # who, for PRIO_PROCESS
PID_ARGUMENTS[number("ioprio_set")] = (1,)  # who, for IOPRIO_WHO_PROCESS
# Calls the sentry itself decides from their registers.
SENTRY_RULES = frozenset(
    {NR_PRCTL, NR_PIDFD_SEND_SIGNAL}
    | {NR_CLONE, NR_CLONE3, NR_SECCOMP, NR_MKNOD, NR_MKNODAT, *PID_ARGUMENTS}
)
SPIN_POLLS = 50  # WNOHANG polls, about 40 µs, before a blocking wait
SPIN_WINDOW_NS = 200_000  # poll only if the last stop was this recent
SECCOMP_STOP = (
    pt.PTRACE_EVENT_SECCOMP << 8
) | signal.SIGTRAP  # status >> 8 at the stop
CAP_KILL = CAPABILITY_NUMBERS["CAP_KILL"]
CAP_SYS_PTRACE = CAPABILITY_NUMBERS["CAP_SYS_PTRACE"]
SKIP_SYSCALL = 0xFFFFFFFFFFFFFFFF  # orig_rax = -1: the kernel skips the call
# How long a frozen sandbox waits for a decided call to leave the kernel. A call
# that blocks longer (a FIFO open, say) has long since copied its arguments.
FREEZE_TIMEOUT = 0.05


class PtracePlatform:
    """Runs the application as traced processes and reports how its init exited."""

    def __init__(self) -> None:
        self.policy: Policy | None = None
        self.filter = b""  # the application's BPF program
        self.sentry_filter = b""
        self.tracees: set[int] = set()
        self.fresh: set[int] = set()  # new tracees whose first stop is still to come
        self.pending: dict[int, SyscallCall] = {}  # calls waiting for their exit stop
        self.regs = pt.UserRegs()
        self.container: Container | None = None
        self.deciders: list[Any] = []
        self.observers: list[Any] = []
        self.veto = False
        self.observe = False
        self.trace: _Trace | None = None
        self.init_pid = 0
        self.init_status: int | None = None
        self.undecided: frozenset[int] = frozenset()  # see run()
        self.spec_profile_traces = False
        self.protected_pids: set[int] = {1}  # the sandbox, its threads and its helpers
        self.paths: Any = None  # stockade.sentry.vfs.PathLayer, with a file server
        self.trace_fd = -1  # the --log file, opened on the host for --debug
        # The calls that nothing decides arrive as notifications, not stops.
        self.notified = False
        # Whether the init is PID 1 of a PID namespace of its own (stockade.pidns).
        # The application then cannot name the sandbox's processes, so the
        # rules that keep its signals and pid-taking calls off them are off.
        self.own_namespace = False
        # That namespace and the init's mount namespace, for exec processes.
        self.app_namespaces: tuple[int, int] | None = None

    # --- on the host ----------------------------------------------------------

    def check(self, container: Container) -> None:
        policy_from_table(container.settings.plugin_table("ptrace"))
        settings = container.settings
        if settings.debug and settings.log:
            # Opened here, on the host, and inherited: in a user namespace the
            # sandbox may have no right to open the file.
            self.trace_fd = os.open(
                settings.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
            container.inherit_fds.append(self.trace_fd)

    # --- inside the sandbox, before pivot_root --------------------------------

    def prepare(self, container: Container) -> None:
        self.container = container
        self.own_namespace = pidns.requested(container)
        self.policy = policy_from_table(container.settings.plugin_table("ptrace"))
        table = container.settings.plugin_table("ptrace")
        if container.file_server is not None:
            self.paths = _path_layer(container, self.policy)
            notified = self.paths.notified_numbers(
                self.policy.numbers(SyscallClass.MEDIATED)
                | self.policy.numbers(SyscallClass.PASSTHROUGH)
            )
            self.filter = bpf.application_program(self.policy, table, notified)
        else:
            self.filter = bpf.application_program(self.policy, table)
        self.sentry_filter = bpf.sentry_program()
        profile = container.spec.linux.get("seccomp")
        self.spec_profile_traces = bool(profile) and oci_seccomp.uses_trace(profile)
        self.deciders = container.syscall_hooks.get("stockade_syscall", [])
        self.observers = container.syscall_hooks.get("stockade_syscall_result", [])
        self.veto = bool(self.deciders)
        self.observe = bool(self.observers)
        if container.settings.debug:
            settings = container.settings
            self.trace = _open_trace(self.trace_fd, settings.log_format == "json")
            self.observe = True
        if self.paths is None:
            # A mediated call that no rule and no plugin decides is handled
            # from a notification: its caller and the sandbox hand over on one
            # CPU, where a ptrace stop wakes the sandbox on another.
            undecided = self._undecided_numbers()
            if undecided:
                self.filter = bpf.application_program(self.policy, table, undecided)
                self.notified = True
        if self.paths is not None:
            self.paths.deciders = self.deciders
            self.paths.container = container
            note = container.note_problem
            if note is not None:
                container.file_server.on_gone = lambda: note(
                    "the gofer exited; file operations in the container fail with EIO"
                )
            self.paths.report = self._report if self.observe else None

    # --- launch ------------------------------------------------------------------

    def launch(self, container: Container, child_setup: ChildSetup) -> int:
        if self.paths is not None and self.paths._epoll is None:
            self.paths.start()
        child_setup.before_fork()
        ready_read, ready_write = os.pipe2(os.O_CLOEXEC)
        go_read, go_write = os.pipe2(os.O_CLOEXEC)
        if self.own_namespace:
            pid = pidns.fork_into_new_namespace()
        else:
            pid = os.fork()
        if pid == 0:
            os.close(ready_read)
            os.close(go_write)
            self._child(container, child_setup, ready_write, go_read)
        os.close(ready_write)
        os.close(go_read)
        try:
            if not os.read(ready_read, 1):
                os.waitpid(pid, 0)
                raise SandboxError(
                    f"application process {pid} exited before it could be traced"
                )
            if self.own_namespace:
                self.app_namespaces = pidns.open_namespaces(pid)
            pt.seize(pid, OPTIONS)
            os.write(go_write, b"x")
        finally:
            os.close(ready_read)
            os.close(go_write)
        self.tracees.add(pid)
        self.init_pid = pid
        return self._run_to_exec(pid, child_setup)

    def _child(
        self, container: Container, child_setup: ChildSetup, ready: int, go: int
    ) -> None:
        """In the new child: own session and mounts, wait to be seized, filter, exec.

        The child waits on a pipe, not in a stop of its own, because PID 1 of a
        PID namespace ignores a SIGSTOP it sends itself while it is untraced.
        """
        try:
            os.setsid()
            if self.own_namespace:
                pidns.enter_own_mounts(container.spec)
            # Inherited from the non-dumpable sandbox, the flag would keep the
            # sandbox from seizing this child when they are in a user namespace.
            # execve resets it for the application.
            linux.prctl(linux.PR_SET_DUMPABLE, 1)
            os.write(ready, b"x")
            if not os.read(go, 1):
                raise SandboxError("the sandbox did not trace the process")
            os.close(ready)
            os.close(go)
            self._load_filter()
        except BaseException as exc:
            os.write(
                2, f"stockade: cannot set up the application process: {exc}\n".encode()
            )
            os._exit(127)
        child_setup.exec()

    def spawn_helper(self, container: Container, main: Any) -> int:
        """Fork a traced helper that runs MAIN; its children are traced from birth.

        The helper gets no seccomp filter of its own: it runs only Stockade's
        code. Its pid is protected from the application's signals like the
        sandbox's. When the application has a PID namespace of its own, the
        helper stays in the sandbox's, and its children go to the application's.
        """
        pid = os.fork()
        if pid == 0:
            try:
                if self.app_namespaces is not None:
                    linux.setns(self.app_namespaces[0], linux.CLONE_NEWPID)
                linux.prctl(linux.PR_SET_DUMPABLE, 1)  # seizable in a user namespace
                os.kill(os.getpid(), signal.SIGSTOP)
                linux.prctl(linux.PR_SET_DUMPABLE, 0)
                main()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            raise SandboxError(f"helper process {pid} exited before it could be traced")
        pt.seize(pid, OPTIONS)
        self.tracees.add(pid)
        self.protected_pids.add(pid)
        os.kill(pid, signal.SIGCONT)
        return pid

    def prepare_exec_child(self) -> None:
        """In a child of the helper, before exec: the init's mounts, then the filter."""
        if self.app_namespaces is not None:
            linux.setns(self.app_namespaces[1], linux.CLONE_NEWNS)
        # As for the init: inherited from the non-dumpable helper, the flag would
        # keep the sandbox from taking the filter's listener in a user namespace,
        # and the child would stay stopped. execve resets it.
        linux.prctl(linux.PR_SET_DUMPABLE, 1)
        self._load_filter()

    def _load_filter(self) -> None:
        """Load the application's filter; hand its listener, if any, to the sandbox.

        The listener waits at a fixed descriptor while the process stops itself;
        the sandbox takes a copy with pidfd_getfd at that stop.
        """
        if self.paths is None and not self.notified:
            bpf.load(self.filter)
            return
        listener = bpf.load_with_listener(self.filter)
        os.dup2(listener, notify.LISTENER_FD)
        os.close(listener)
        os.kill(os.getpid(), signal.SIGSTOP)
        os.close(notify.LISTENER_FD)

    def _run_to_exec(self, pid: int, child_setup: ChildSetup) -> int:
        """Serve the new init's stops until its execve succeeds; raise its exec error."""
        while True:
            stopped, status = os.waitpid(-1, pt.WALL)
            event = status >> 16
            if stopped == pid and (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
                self.tracees.discard(pid)
                error = child_setup.result()
                raise SandboxError(
                    error or f"application process exited before exec ({status:#x})"
                )
            if stopped == pid and event == pt.PTRACE_EVENT_EXEC:
                if self.paths is not None:
                    self.paths.on_exec(pid)
                error = child_setup.result()
                self._resume(pid)
                if error is not None:
                    raise SandboxError(error)
                return pid
            self._handle(stopped, status)

    # --- the loop -------------------------------------------------------------------

    def run(self, container: Container, init_pid: int) -> int:
        self.protected_pids |= _sentry_tids()
        self._confine_sentry()
        # The fast path: a mediated call that no rule and no plugin decides is
        # resumed after one PTRACE_GETEVENTMSG, which returns the call's number
        # (the filter puts it in SECCOMP_RET_DATA), without fetching registers.
        self.undecided = self._undecided_numbers()
        message = ctypes.c_ulong()
        address = ctypes.addressof(message)
        ptrace, waitpid, wall = pt.libc_ptrace, os.waitpid, pt.WALL
        monotonic_ns, last_stop = time.monotonic_ns, 0
        while True:
            try:
                pid = 0
                if monotonic_ns() - last_stop < SPIN_WINDOW_NS:
                    # In a burst of calls the next stop comes within microseconds.
                    # Polling for it saves the wakeup across CPUs, which costs
                    # about 30 µs on the VMs measured here.
                    for _ in range(SPIN_POLLS):
                        pid, status = waitpid(-1, wall | os.WNOHANG)
                        if pid:
                            break
                if not pid:
                    pid, status = waitpid(-1, wall)
            except ChildProcessError:
                break
            last_stop = monotonic_ns()
            if status >> 8 == SECCOMP_STOP:
                ptrace(pt.PTRACE_GETEVENTMSG, pid, None, address)
                if message.value in self.undecided:
                    ptrace(pt.PTRACE_CONT, pid, None, None)  # ESRCH: reaped later
                    continue
            self._handle(pid, status)
        return self.init_status if self.init_status is not None else 255 << 8

    def _adopt_listener(self, pid: int) -> bool:
        """Let the calls of the listener PID handed over run, in a thread of its own."""
        listener = notify.take_listener(pid)
        if listener is None:
            return False
        thread = threading.Thread(target=listener.let_all_run, daemon=True)
        thread.start()
        if thread.native_id is not None:
            self.protected_pids.add(thread.native_id)  # the sandbox's, like its others
        return True

    def _undecided_numbers(self) -> frozenset[int]:
        """Mediated calls that nothing will decide, given this container's plugins."""
        if self.veto or self.observe or self.policy is None:
            return frozenset()
        if self.spec_profile_traces:
            return frozenset()  # its TRACE data would be reported instead of ours
        mediated = self.policy.numbers(SyscallClass.MEDIATED)
        if self.paths is not None:
            mediated -= EXEC_CALLS | SOCKET_CALLS
        return frozenset(mediated - SENTRY_RULES)

    def _confine_sentry(self) -> None:
        """Drop what the sandbox process no longer needs once the application runs.

        It keeps CAP_KILL, to signal application processes of any uid, and
        CAP_SYS_PTRACE, to read the memory of tracees that changed uid. Its own
        seccomp filter then allows only the calls of the tracer loop and the
        control socket.
        """
        keep = (1 << CAP_KILL) | (1 << CAP_SYS_PTRACE)
        try:
            for number in range(last_capability() + 1):
                if not keep & (1 << number):
                    linux.prctl(linux.PR_CAPBSET_DROP, number)
            linux.capset(keep, keep, 0)
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
            bpf.load(self.sentry_filter, all_threads=True)
        except OSError as exc:
            # NOTE: best effort by design; the application is already confined by
            # its own filter, the namespaces and its capability sets.
            os.write(2, f"stockade: sandbox could not confine itself: {exc}\n".encode())

    def _handle(self, pid: int, status: int) -> None:
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self._on_exit(pid, status)
            return
        if not os.WIFSTOPPED(status):
            return
        event = status >> 16
        sig = os.WSTOPSIG(status)
        if event == pt.PTRACE_EVENT_SECCOMP:
            self._on_seccomp(pid)
        elif event in NEW_PROCESS_EVENTS:
            child = pt.get_event_msg(pid)
            if self.paths is not None:
                self.paths.on_fork(pid, child)
            if child not in self.tracees:
                self._add_tracee(child)
                self.fresh.add(child)
            self._resume(pid)
        elif pid in self.fresh or pid not in self.tracees:
            # The first stop of an auto-attached child; it may come before the event.
            self.fresh.discard(pid)
            self._add_tracee(pid)
            self._resume(pid)
        elif event == pt.PTRACE_EVENT_EXEC and self.paths is not None:
            self.paths.on_exec(pid)  # exec may have changed its ids and capabilities
            self._resume(pid)
        elif event == pt.PTRACE_EVENT_STOP:
            if sig in STOP_SIGNALS:
                _ignore_gone(pt.listen, pid)  # group-stop: stay stopped until SIGCONT
            else:
                self._resume(pid)
        elif event:
            self._resume(pid)
        elif sig == pt.SYSCALL_STOP_SIGNAL:
            self._on_syscall_exit(pid)
        elif sig == signal.SIGSTOP and self.paths and self.paths.adopt_listener(pid):
            self._resume(pid)  # a new filter's listener, handed over
        elif sig == signal.SIGSTOP and self.notified and self._adopt_listener(pid):
            self._resume(pid)
        elif sig == signal.SIGSTOP and self._stop_sent_to_own_init(pid):
            self._resume(pid)  # dropped, as the kernel drops it for an untraced init
        else:
            self._resume(pid, sig)  # signal-delivery-stop: deliver it

    def _stop_sent_to_own_init(self, pid: int) -> bool:
        """Return whether a process of the init's own namespace sent it this SIGSTOP.

        The kernel drops a SIGSTOP sent to PID 1 from inside its namespace, but
        only when PID 1 is untraced. A traced PID 1 stops for the tracer first.
        A sender in an ancestor namespace, the sandbox included, shows as pid 0.
        """
        if not self.own_namespace:
            return False
        if pid != self.init_pid and _thread_group(pid) != self.init_pid:
            return False
        try:
            info = pt.get_siginfo(pid)
        except OSError:
            return False
        return info.si_code <= 0 and info.si_pid != 0

    def _resume(self, pid: int, sig: int = 0) -> None:
        """Continue PID, stopping at its syscall exit if a result is awaited."""
        request = pt.syscall if pid in self.pending else pt.cont
        _ignore_gone(request, pid, sig)

    def _on_exit(self, pid: int, status: int) -> None:
        if self.paths is not None:
            self.paths.on_exit(pid)
        self.tracees.discard(pid)
        self.fresh.discard(pid)
        self.pending.pop(pid, None)
        if pid == self.init_pid:
            self.init_status = status
            for other in {_thread_group(tid) for tid in self.tracees} - {0}:
                _kill_quietly(other)

    def _add_tracee(self, pid: int) -> None:
        """Record a new tracee; once the init has exited, it is killed at once.

        The init of a PID namespace takes every other process with it. The
        kernel does that in the application's own namespace, but not to the
        exec launcher, which is outside it, and not in a namespace joined by
        path, which other containers' processes may share. So the sandbox
        kills its own tracees, and any that a fork adds later.
        """
        self.tracees.add(pid)
        if self.init_status is not None:
            _kill_quietly(pid)

    # --- mediated calls ------------------------------------------------------------

    def _on_seccomp(self, pid: int) -> None:
        try:
            regs = pt.get_regs(pid, self.regs)
        except ProcessLookupError:
            return
        nr = regs.syscall_nr()
        args = regs.syscall_args()
        if nr == NR_KILL and signed32(args[0]) == -1 and not self.own_namespace:
            self._kill_all_but_protected(pid, regs, signed32(args[1]))
            return
        error = self._sentry_rule(nr, args)
        if error is None and nr == NR_PIDFD_SEND_SIGNAL and not self.own_namespace:
            error = self._pidfd_rule(pid, signed32(args[0]))
        call = None
        if error is None and (self.veto or self.observe):
            call = SyscallCall(
                self.container.id if self.container else "", pid, nr, args
            )
        if error is None and self.paths is not None and nr in EXEC_CALLS:
            self._exec_through_paths(pid, regs, call)
            return
        if error is None and self.paths is not None and nr in SOCKET_CALLS:
            if self._socket_through_paths(pid, regs, call):
                return
        if error is None and self.veto:
            error = self._ask_plugins(pid, call)
            if error == 0:
                return  # decided while the sandbox was frozen; PID already resumed
        if error:
            self._fail(pid, regs, error, call)
            return
        if self.observe and call is not None:
            call.decoded()  # now: after an execve the old memory is gone
            self.pending[pid] = call
        self._resume(pid)

    def _exec_through_paths(
        self, pid: int, regs: pt.UserRegs, call: SyscallCall | None
    ) -> None:
        """Point an execve at the program's copy in the sandbox, then let it run.

        The new path is written below the caller's stack pointer, where another
        thread could overwrite it, so the other tracees stay stopped while the
        call reads it when the caller has threads.
        """
        threaded = _thread_count(pid) > 1
        deferred = self._freeze_others(pid) if threaded else []
        try:
            error = self._decide(call) if call is not None and self.veto else None
            if not error:
                try:
                    self.paths.prepare_exec(pid, regs)
                except OSError as exc:
                    error = exc.errno or errno.EIO
            if error:
                self._fail(pid, regs, error, call)
                return
            try:
                pt.set_regs(pid, regs)
            except ProcessLookupError:
                return
            if self.observe and call is not None:
                call.decoded()
                self.pending[pid] = call
            if threaded:
                self._run_call_frozen(pid, deferred)
            else:
                self._resume(pid)
        finally:
            for stopped, status in deferred:
                self._handle(stopped, status)

    def _socket_through_paths(
        self, pid: int, regs: pt.UserRegs, call: SyscallCall | None
    ) -> bool:
        """Bind or connect a socket to a path among the container's files.

        The address is read once; plugins see that copy and the gofer acts on
        it. Returns False when the kernel may run the call as made.
        """
        args = regs.syscall_args()
        try:
            found = self.paths.unix_address(pid, args)
        except OSError as exc:
            self._fail(pid, regs, exc.errno or errno.EIO, call)
            return True
        if found is None:
            return False
        raw, path = found
        error = None
        if call is not None:
            call._decoded = [signed32(args[0]), pt.format_sockaddr(raw), args[2]]
            if self.veto:
                error = self._decide(call)
        if not error:
            try:
                result = self.paths.unix_socket(
                    pid, regs.syscall_nr(), signed32(args[0]), path
                )
            except OSError as exc:
                error = exc.errno or errno.EIO
        if error:
            self._fail(pid, regs, error, call)
            return True
        if call is not None and self.observe:
            self._report(call, result)
        self._skip_call(pid, regs, result)
        return True

    def _kill_all_but_protected(self, caller: int, regs: pt.UserRegs, sig: int) -> None:
        """Carry out kill(-1, SIG) for CALLER, sparing the sandbox's own processes.

        Used when the application shares a PID namespace joined by path. The
        kernel would spare only that namespace's PID 1 and the caller, and would
        reach the sandbox, its helpers and other containers' processes there.
        So only the application's own processes get the signal. Its init is
        spared, as the kernel spares a container's init under runc.
        """
        groups = {_thread_group(tid) for tid in self.tracees} - {0}
        spared = self.protected_pids | {self.init_pid, _thread_group(caller)}
        result = -errno.ESRCH
        for group in sorted(groups - spared):
            try:
                if 0 <= sig < signal.NSIG:
                    os.kill(group, sig)
                result = 0
            except (ProcessLookupError, PermissionError):
                continue
            except OSError as exc:
                result = -exc.errno
                break
        self._skip_call(caller, regs, result)

    def _sentry_rule(self, nr: int, args: tuple[int, ...]) -> int | None:
        """Return the errno the sentry itself fails this call with, or None."""
        if nr == NR_CLONE and args[0] & CLONE_FORBIDDEN:
            return errno.EPERM
        if nr == NR_CLONE3:
            return errno.ENOSYS  # its flags are in memory; libc falls back to clone
        if not self.own_namespace:
            for index in PID_ARGUMENTS.get(nr, ()):
                if signed32(args[index]) in self.protected_pids:
                    return errno.EPERM
        if nr == NR_SECCOMP and args[1] & SECCOMP_FILTER_FLAG_NEW_LISTENER:
            return errno.EPERM  # a listener's USER_NOTIF would outrank our TRACE
        if (nr == NR_SECCOMP and args[0] == SECCOMP_SET_MODE_FILTER) or (
            nr == NR_PRCTL
            and args[0] == PR_SET_SECCOMP
            and args[1] == SECCOMP_MODE_FILTER
        ):
            # The application's own filter could return TRACE with forged data,
            # so from now on every stop reads the number from the registers.
            self.undecided = frozenset()
        if nr in (NR_MKNOD, NR_MKNODAT):
            mode = args[1] if nr == NR_MKNOD else args[2]
            if mode & S_IFMT in (S_IFCHR, S_IFBLK):
                return errno.EPERM  # no device nodes: the container gets only its /dev
        return None

    def _pidfd_rule(self, pid: int, fd: int) -> int | None:
        """Refuse pidfd_send_signal aimed at the sandbox or its helpers.

        The target is a descriptor: a pidfd, or a /proc/PID directory, which
        the kernel also takes. Its process is read from a copy of it.
        """
        try:
            copy = notify.copy_descriptor(_thread_group(pid) or pid, fd)
        except ProcessLookupError:
            return errno.ESRCH
        except OSError:
            return errno.EBADF
        try:
            target = _descriptor_pid(copy)
        finally:
            os.close(copy)
        if target is None or target in self.protected_pids:
            return errno.EPERM
        return None

    def _ask_plugins(self, pid: int, call: SyscallCall) -> int | None:
        """Call the stockade_syscall hook; freeze the sandbox if memory is read.

        Returns an errno to fail the call, None to let it run, or 0 when the call
        has already been run to completion under the freeze.
        """
        entry = SYSCALLS.get(call.nr)
        reads_memory = entry is not None and any(k in MEMORY_KINDS for k in entry.args)
        if not reads_memory or len(self.tracees) <= 1:
            return self._decide(call)
        deferred = self._freeze_others(pid)
        try:
            error = self._decide(call)
            if error:
                return error
            if self.observe:
                self.pending[pid] = call
            self._run_call_frozen(pid, deferred)
            return 0
        finally:
            for stopped, status in deferred:
                self._handle(stopped, status)

    def _decide(self, call: SyscallCall) -> int | None:
        for decide in self.deciders:
            error = decide(container=self.container, call=call)
            if error is not None:
                return error
        return None

    def _freeze_others(self, pid: int) -> list[tuple[int, int]]:
        """Stop every other tracee; return the wait statuses collected meanwhile."""
        waiting = set()
        for other in self.tracees - {pid}:
            if _ignore_gone(pt.interrupt, other):
                waiting.add(other)
        deferred = []
        while waiting:
            try:
                stopped, status = os.waitpid(-1, pt.WALL)
            except ChildProcessError:
                break
            waiting.discard(stopped)
            deferred.append((stopped, status))
        return deferred

    def _run_call_frozen(self, pid: int, deferred: list[tuple[int, int]]) -> None:
        """Let PID's call enter the kernel while the others stay stopped."""
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
        try:
            _ignore_gone(pt.syscall, pid, 0)
            deadline = time.monotonic() + FREEZE_TIMEOUT
            while True:
                stopped, status = os.waitpid(pid, pt.WALL | os.WNOHANG)
                if stopped:
                    deferred.append((stopped, status))
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                signal.sigtimedwait([signal.SIGCHLD], remaining)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def _fail(
        self, pid: int, regs: pt.UserRegs, error: int, call: SyscallCall | None
    ) -> None:
        if call is not None and self.observe:
            self._report(call, -error)
        self._skip_call(pid, regs, -error)

    def _skip_call(self, pid: int, regs: pt.UserRegs, result: int) -> None:
        """Resume PID past its stopped call, which returns RESULT without running."""
        regs.orig_rax = SKIP_SYSCALL
        regs.set_return(result)
        try:
            pt.set_regs(pid, regs)
        except ProcessLookupError:
            return
        _ignore_gone(pt.cont, pid, 0)

    def _on_syscall_exit(self, pid: int) -> None:
        call = self.pending.pop(pid, None)
        if call is not None:
            try:
                result = signed(pt.get_regs(pid, self.regs).rax)
            except ProcessLookupError:
                return
            self._report(call, result)
        _ignore_gone(pt.cont, pid, 0)

    def _report(self, call: SyscallCall, result: int) -> None:
        if self.trace is not None:
            self.trace.write(call.format(result))
        for observe in self.observers:
            observe(container=self.container, call=call, result=result)


def _ignore_gone(request: Any, pid: int, *args: int) -> bool:
    """Run a ptrace REQUEST; return False if the tracee is already gone."""
    try:
        request(pid, *args)
    except ProcessLookupError:
        return False
    return True


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _thread_group(tid: int) -> int:
    """Return the thread group (process) id of TID, or 0 if it is gone."""
    return (linux.status_numbers(tid, "Tgid") or [0])[0]


def _descriptor_pid(fd: int) -> int | None:
    """Return the process a pidfd or a /proc/PID directory descriptor names, if any."""
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if link.startswith("/proc/") and link[6:].isdigit():
        return int(link[6:])
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("Pid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _thread_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 1


def _path_layer(container: Container, policy: Policy) -> Any:
    """Return the path layer for a sandbox whose files a file server owns."""
    from stockade.sentry.vfs import PathLayer

    return PathLayer(container.file_server, container.spec, container.id)


def _sentry_tids() -> frozenset[int]:
    try:
        return frozenset(int(t) for t in os.listdir("/proc/self/task")) | {1}
    except OSError:
        return frozenset({1})


class _Trace:
    """Writes --debug's syscall trace lines as text, or as runc-style JSON log lines."""

    def __init__(self, stream: TextIO, as_json: bool) -> None:
        self.stream = stream
        self.as_json = as_json

    def write(self, line: str) -> None:
        if self.as_json:
            moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            line = json.dumps({"level": "debug", "msg": line, "time": moment})
        self.stream.write(line + "\n")


def _open_trace(log_fd: int, as_json: bool) -> _Trace:
    """Open where --debug's syscall trace goes: the --log file's LOG_FD, or stderr."""
    if log_fd >= 0:
        return _Trace(os.fdopen(log_fd, "a", buffering=1), as_json)
    return _Trace(os.fdopen(os.dup(2), "w", buffering=1), False)

"""The ptrace platform: the application runs as traced children of the sandbox.

The sandbox process is the tracer of every application process. It forks
the init into a PID namespace of its own when the spec requests a new one
(``stockade.pidns``), seizes the init before exec, follows fork, vfork and
clone automatically, decides each system call that the policy mediates, reaps
every exit, passes signals on to the tracee they were meant for, and, when the
init exits, kills every other process it traces, as the kernel does when a
PID namespace's init exits.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stockade.hookspecs import hookimpl
from stockade.providers import PLATFORM


class PtraceProvider:
    """The platform's registration; the tracer, its policy and libseccomp load on use.

    Every command loads the plugins, but only create and run need the tracer,
    so start, kill and delete skip about 15 ms of imports.
    """

    name = "ptrace"
    kind: ClassVar[str] = PLATFORM
    description = "the application runs as ptrace-traced processes of the sandbox"

    def __init__(self) -> None:
        self._platform: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._platform is None:
            from .tracer import PtracePlatform

            self._platform = PtracePlatform()
        return getattr(self._platform, attribute)


@hookimpl
def stockade_providers():  # type: ignore[no-untyped-def]
    return [PtraceProvider()]


@hookimpl
def stockade_config_tables():  # type: ignore[no-untyped-def]
    # [plugins.ptrace] strict = true, and [plugins.ptrace.syscalls] NAME = "CLASS".
    return {"ptrace": {"strict": bool, "syscalls": dict}}

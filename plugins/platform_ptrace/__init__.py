"""The ptrace platform: the application runs as traced children of the sandbox.

The sandbox process is the tracer of every application process. It seizes
the init before exec, follows fork, vfork and clone automatically, decides
each system call that the policy mediates, reaps every exit, passes signals
on to the tracee they were meant for, and, when the init exits, kills every
other process of the sandbox, as the kernel does when a PID namespace's init
exits.
"""

from __future__ import annotations

from typing import ClassVar

from stockade.hookspecs import hookimpl
from stockade.providers import PLATFORM

from .tracer import PtracePlatform

__all__ = ["PtracePlatform"]


class PtraceProvider(PtracePlatform):
    name = "ptrace"
    kind: ClassVar[str] = PLATFORM
    description = "the application runs as ptrace-traced processes of the sandbox"


@hookimpl
def stockade_providers():  # type: ignore[no-untyped-def]
    return [PtraceProvider()]


@hookimpl
def stockade_config_tables():  # type: ignore[no-untyped-def]
    # [plugins.ptrace] strict = true, and [plugins.ptrace.syscalls] NAME = "CLASS".
    return {"ptrace": {"strict": bool, "syscalls": dict}}

"""Compiled seccomp programs: cached, and loaded without libseccomp.

Building a filter needs pyseccomp, whose import alone runs ldconfig in a
subprocess; together that costs about 10 ms on every create. The program
libseccomp exports for a given policy never changes while the policy's
sources and the config's overrides stay the same, so it is cached as raw BPF
and loaded here with one seccomp(2) call.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from .. import linux
from . import policy as policy_module
from . import syscalls
from .cache import cached

SYS_SECCOMP = 317
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 8
SOCK_FILTER_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k

_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCES = [
    policy_module.POLICY_FILE,
    syscalls.__file__,
    os.path.join(_HERE, "seccomp_filter.py"),
]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def application_program(
    policy: policy_module.Policy,
    table: Mapping[str, Any],
    notify: frozenset[int] = frozenset(),
) -> bytes:
    """Return the BPF of the application's filter for POLICY, built from TABLE.

    NOTIFY lists the calls that go to the sentry as user notifications.
    """
    key = json.dumps([table, sorted(notify)], sort_keys=True, default=str).encode()
    name = "app-" + hashlib.sha256(key).hexdigest()[:16]

    def build() -> bytes:
        from .seccomp_filter import export_bpf

        return export_bpf(policy, notify)

    return cached(name, _SOURCES, build)


def sentry_program() -> bytes:
    """Return the BPF of the sandbox process's own allow-list filter."""

    def build() -> bytes:
        from .seccomp_filter import export_sentry_bpf

        return export_sentry_bpf()

    return cached("sentry", _SOURCES, build)


def gofer_program() -> bytes:
    """Return the BPF of the gofer's allow-list filter."""

    def build() -> bytes:
        from .seccomp_filter import export_gofer_bpf

        return export_gofer_bpf()

    return cached("gofer", _SOURCES, build)


def load_with_listener(program: bytes) -> int:
    """Install PROGRAM for this thread and return its notification listener."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // SOCK_FILTER_SIZE, ctypes.addressof(buffer))
    for attempt in (1, 2):
        result = linux.libc.syscall(
            ctypes.c_long(SYS_SECCOMP),
            ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
            ctypes.c_uint(SECCOMP_FILTER_FLAG_NEW_LISTENER),
            ctypes.byref(fprog),
        )
        if result >= 0:
            return int(result)
        err = ctypes.get_errno()
        if (
            err != 13 or attempt == 2
        ):  # EACCES: without CAP_SYS_ADMIN, needs no_new_privs
            break
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    raise OSError(err, os.strerror(err), "seccomp")


def load(program: bytes, all_threads: bool = False) -> None:
    """Install PROGRAM for this thread (or, with ALL_THREADS, the whole process).

    Without CAP_SYS_ADMIN the kernel requires no_new_privs, which is then set.
    """
    if len(program) % SOCK_FILTER_SIZE:
        raise ValueError(
            f"a BPF program of {len(program)} bytes is not whole instructions"
        )
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // SOCK_FILTER_SIZE, ctypes.addressof(buffer))
    flags = SECCOMP_FILTER_FLAG_TSYNC if all_threads else 0
    result = linux.libc.syscall(
        ctypes.c_long(SYS_SECCOMP),
        ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
        ctypes.c_uint(flags),
        ctypes.byref(fprog),
    )
    if result != 0:
        err = ctypes.get_errno()
        if err != 13 or linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1) != 0:  # EACCES
            raise OSError(err, os.strerror(err), "seccomp")
        load(program, all_threads)

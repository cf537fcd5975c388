"""The spec's linux.seccomp profile, compiled to BPF on top of the sandbox's filter.

The application always runs under the sandbox's own filter. A profile from
config.json (podman and Docker send one with every container) is a second
filter loaded after it, so it can only take more away. The compiled program
is cached by the profile's content, like the sandbox's own.
"""

from __future__ import annotations

import errno
import hashlib
import json
from typing import Any

from ..errors import SpecError
from .bpf import _SOURCES
from .cache import cached

ACTIONS = (
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
)  # fmt: skip
OPERATORS = (
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
    "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
)  # fmt: skip


def check(profile: Any, where: str) -> None:
    """Reject a profile this runtime cannot enforce, naming the field."""
    if not isinstance(profile, dict):
        raise SpecError(f"{where}: linux.seccomp must be a JSON object")
    if profile.get("listenerPath") or _uses(profile, "SCMP_ACT_NOTIFY"):
        raise SpecError(
            f"{where}: linux.seccomp uses SCMP_ACT_NOTIFY, which the sandbox rejects: "
            f"a notification listener would outrank its own filter"
        )
    for action in [profile.get("defaultAction"), *_actions(profile)]:
        if action not in ACTIONS:
            raise SpecError(
                f"{where}: unknown seccomp action {action!r}; valid: {', '.join(ACTIONS)}"
            )
    for rule in profile.get("syscalls") or []:
        for arg in rule.get("args") or []:
            if arg.get("op") not in OPERATORS:
                raise SpecError(f"{where}: unknown seccomp operator {arg.get('op')!r}")


def uses_trace(profile: dict[str, Any]) -> bool:
    """Whether the profile returns TRACE, whose data the sandbox must then not trust."""
    return _uses(profile, "SCMP_ACT_TRACE")


def program(profile: dict[str, Any]) -> bytes:
    """Return the profile's BPF, compiled once per distinct profile."""
    key = hashlib.sha256(json.dumps(profile, sort_keys=True).encode()).hexdigest()[:16]
    return cached(f"spec-{key}", _SOURCES, lambda: _compile(profile))


def _compile(profile: dict[str, Any]) -> bytes:
    import pyseccomp as seccomp

    from .seccomp_filter import _export

    default_errno = profile.get("defaultErrnoRet", errno.EPERM)
    filt = seccomp.SyscallFilter(
        _action(seccomp, profile["defaultAction"], default_errno)
    )
    for rule in profile.get("syscalls") or []:
        action = _action(seccomp, rule["action"], rule.get("errnoRet", default_errno))
        args = [_argument(seccomp, arg) for arg in rule.get("args") or []]
        for name in rule.get("names") or []:
            try:
                filt.add_rule(action, name, *args)
            except (ValueError, RuntimeError, OSError):
                # Unknown to this libseccomp, or the same as the default action:
                # runc skips both as well.
                continue
    return _export(filt)


def _action(seccomp: Any, name: str, errno_value: int) -> Any:
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return seccomp.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return seccomp.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return seccomp.TRAP
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(errno_value)
    if name == "SCMP_ACT_TRACE":
        return seccomp.TRACE(errno_value)
    if name == "SCMP_ACT_LOG":
        return seccomp.LOG
    return seccomp.ALLOW


def _argument(seccomp: Any, arg: dict[str, Any]) -> Any:
    operator = {
        "SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT, "SCMP_CMP_LE": seccomp.LE,
        "SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_GE": seccomp.GE, "SCMP_CMP_GT": seccomp.GT,
        "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
    }[arg["op"]]  # fmt: skip
    if arg["op"] == "SCMP_CMP_MASKED_EQ":
        return seccomp.Arg(
            arg["index"], operator, arg.get("value", 0), arg.get("valueTwo", 0)
        )
    return seccomp.Arg(arg["index"], operator, arg.get("value", 0))


def _actions(profile: dict[str, Any]) -> list[Any]:
    return [rule.get("action") for rule in profile.get("syscalls") or []]


def _uses(profile: dict[str, Any], action: str) -> bool:
    return profile.get("defaultAction") == action or action in _actions(profile)

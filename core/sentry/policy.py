"""The sentry's system call policy: the class of every x86-64 system call.

Each system call is in exactly one class:

- passthrough: the kernel runs it directly (seccomp ALLOW).
- mediated: the tracee stops and the sentry decides (seccomp TRACE). A mediated
  row may carry a condition on one argument, in which case only the calls that
  meet it stop, and the others pass through.
- denied: the call fails with an errno and the tracee never stops (seccomp
  ERRNO).

The rows, each with its reason, are in ``policy.toml`` next to this module and
are documented in docs/syscall-policy.md. A number in no row, including any
number newer than the table, is denied with ENOSYS, the errno that a kernel
without the call returns, so programs take their fallback path.

The container's TOML configuration may override rows::

    [plugins.ptrace]
    strict = true            # mediate every call that is not denied

    [plugins.ptrace.syscalls]
    getpid = "passthrough"
    keyctl = "denied:ENOSYS"
"""

from __future__ import annotations

import errno
import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError
from . import syscalls
from .cache import cached

log = logging.getLogger(__name__)
POLICY_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policy.toml")

DEFAULT_DENY_ERRNO = errno.EPERM
UNKNOWN_SYSCALL_ERRNO = errno.ENOSYS
_OVERRIDE_FORMS = "passthrough, mediated, denied, or denied:ERRNO such as denied:EACCES"


class SyscallClass(StrEnum):
    PASSTHROUGH = "passthrough"
    MEDIATED = "mediated"
    DENIED = "denied"


_CLASS_NAMES = frozenset(cls.value for cls in SyscallClass)


@dataclass(frozen=True, slots=True)
class Condition:
    """The argument test that makes a mediated row stop only some calls.

    With ``mask`` set, a call is mediated when ``args[arg] & mask`` is not 0.
    Without it, a call is mediated when ``args[arg]`` is not 0. All other
    calls pass through.
    """

    arg: int
    mask: int | None = None

    def matches(self, args: tuple[int, ...]) -> bool:
        """Tell whether a call with these raw arguments is mediated."""
        value = args[self.arg]
        return bool(value & self.mask) if self.mask is not None else value != 0


@dataclass(frozen=True, slots=True)
class Rule:
    """The class of one system call, the reason for it, and where it came from.

    ``reason`` is the ``why`` column of policy.toml.
    """

    nr: int
    name: str
    cls: SyscallClass
    reason: str
    errno: int = 0  # the errno of a denied call, 0 otherwise
    condition: Condition | None = None
    origin: str = "default"  # "default", "strict" or "override"


class Policy:
    """The rules for every known system call, looked up by number."""

    def __init__(self, rules: Mapping[int, Rule], strict: bool = False) -> None:
        self.rules: Mapping[int, Rule] = MappingProxyType(dict(rules))
        self.strict = strict

    def rule(self, nr: int) -> Rule:
        """Return the rule for NR; a number in no row is denied with ENOSYS."""
        found = self.rules.get(nr)
        if found is not None:
            return found
        return Rule(
            nr,
            syscalls.name(nr),
            SyscallClass.DENIED,
            "not in the policy table",
            UNKNOWN_SYSCALL_ERRNO,
        )

    def classify(self, nr: int) -> SyscallClass:
        return self.rule(nr).cls

    def numbers(self, cls: SyscallClass) -> frozenset[int]:
        """Return the numbers of the system calls in class CLS."""
        return frozenset(nr for nr, rule in self.rules.items() if rule.cls is cls)

    def __getitem__(self, name: str) -> Rule:
        return self.rule(syscalls.number(name))


def load_policy(
    overrides: Mapping[str, str] | None = None, strict: bool = False
) -> Policy:
    """Build the policy from the default table, STRICT mode and OVERRIDES.

    STRICT turns every passthrough and conditional row into an unconditional
    mediated one, so every call that is not denied stops for the sentry. OVERRIDES
    map a system call name to "passthrough", "mediated", "denied" or
    "denied:ERRNO" and apply after STRICT, so a strict policy can still let a
    few hot calls pass. Raise ConfigError naming the first invalid entry.
    """
    rules = dict(_default_rules())
    if strict:
        rules = {nr: _mediate(rule) for nr, rule in rules.items()}
    for name, value in (overrides or {}).items():
        rule = _parse_override(name, value)
        _warn_if_relaxed(rules.get(rule.nr), rule)
        rules[rule.nr] = rule
    return Policy(rules, strict)


def policy_from_table(table: Mapping[str, Any]) -> Policy:
    """Build the policy from a ``[plugins.ptrace]`` configuration table.

    The table's ``strict`` key is a boolean and its ``syscalls`` key is a table
    of overrides, both optional.
    """
    strict = table.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigError(
            f"[plugins.ptrace] strict = {strict!r} is invalid; use true or false"
        )
    overrides = table.get("syscalls", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError(
            "[plugins.ptrace] syscalls must be a table: "
            '[plugins.ptrace.syscalls] with entries such as getpid = "passthrough"'
        )
    return load_policy(overrides, strict)


def _mediate(rule: Rule) -> Rule:
    if rule.cls is SyscallClass.DENIED:
        return rule
    if rule.cls is SyscallClass.MEDIATED and rule.condition is None:
        return rule
    return replace(rule, cls=SyscallClass.MEDIATED, condition=None, origin="strict")


def _parse_override(name: Any, value: Any) -> Rule:
    if not isinstance(name, str) or name not in syscalls.BY_NAME:
        raise ConfigError(_unknown_name_message(name))
    nr = syscalls.number(name)
    if not isinstance(value, str):
        raise ConfigError(
            f"system call override {name} = {value!r} is invalid; "
            f"use one of {_OVERRIDE_FORMS}"
        )
    cls_name, _, errno_name = value.partition(":")
    if cls_name not in _CLASS_NAMES:
        raise ConfigError(
            f"system call override {name} = {value!r} has an invalid class; "
            f"use one of {_OVERRIDE_FORMS}"
        )
    cls = SyscallClass(cls_name)
    if errno_name and cls is not SyscallClass.DENIED:
        raise ConfigError(
            f"system call override {name} = {value!r} is invalid: "
            "only the denied class takes an errno"
        )
    number = _parse_errno(name, value, errno_name) if cls is SyscallClass.DENIED else 0
    return Rule(nr, name, cls, "set in the configuration", number, origin="override")


def _parse_errno(name: str, value: str, errno_name: str) -> int:
    if not errno_name:
        return DEFAULT_DENY_ERRNO
    number = getattr(errno, errno_name, None)
    if not errno_name.startswith("E") or not isinstance(number, int):
        raise ConfigError(
            f"system call override {name} = {value!r} names an unknown errno "
            f"{errno_name!r}; use a name from errno(3) such as EPERM or ENOSYS"
        )
    return number


def _unknown_name_message(name: Any) -> str:
    message = f"system call override {name!r} is not an x86-64 system call name"
    import difflib  # only for an error message

    close = difflib.get_close_matches(str(name), syscalls.BY_NAME, n=3)
    if close:
        message += "; did you mean " + " or ".join(close) + "?"
    return message


def _warn_if_relaxed(old: Rule | None, new: Rule) -> None:
    if old is not None and old.cls is SyscallClass.DENIED and new.cls != old.cls:
        log.warning(
            "system call %s is denied by default (%s) but the configuration "
            "makes it %s",
            new.name,
            old.reason,
            new.cls,
        )


@functools.cache
def _default_rules() -> Mapping[int, Rule]:
    """Parse policy.toml once; raise ValueError naming a malformed row."""
    rows = cached("policy", [POLICY_FILE], _read_policy_rows)
    rules = {}
    for name, row in rows.items():
        rule = _parse_row(name, row)
        rules[rule.nr] = rule
    return MappingProxyType(rules)


def _read_policy_rows() -> dict[str, Any]:
    import tomllib  # only when the cache is stale

    with open(POLICY_FILE, "rb") as f:
        return tomllib.load(f)["syscalls"]


def _parse_row(name: str, row: Mapping[str, Any]) -> Rule:
    if name not in syscalls.BY_NAME:
        raise ValueError(f"policy.toml: {name!r} is not an x86-64 system call")
    cls = SyscallClass(row["class"])
    number = 0
    if cls is SyscallClass.DENIED:
        number = getattr(errno, row.get("errno", "EPERM"))
    condition = None
    if "arg" in row:
        valid = cls is SyscallClass.MEDIATED and 0 <= row["arg"] < 6
        if not valid or ("mask" in row) == row.get("nonzero", False):
            raise ValueError(f"policy.toml: {name}: invalid argument condition")
        condition = Condition(row["arg"], row.get("mask"))
    reason = row["why"]
    return Rule(syscalls.number(name), name, cls, reason, number, condition)

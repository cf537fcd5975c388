"""The sentry's system call table and policy: coverage, overrides, strict mode."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
from stockade.errors import ConfigError
from stockade.sentry import syscalls
from stockade.sentry.policy import (
    Policy,
    SyscallClass,
    load_policy,
    policy_from_table,
)

UNISTD_64 = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "syscall-policy.md"

PASSTHROUGH = ["read", "write", "mmap", "futex", "clock_gettime", "getpid", "close"]
MEDIATED = [
    "open", "openat", "openat2", "stat", "lstat", "newfstatat", "statx", "execve",
    "execveat", "chdir", "mkdir", "unlink", "rename", "link", "symlink",
    "readlink", "chmod", "chown", "utimensat", "truncate", "statfs", "setxattr",
    "getxattr", "socket", "connect", "bind", "sendmsg", "setuid", "setresuid",
    "setgroups", "clone3", "kill", "tgkill",
]  # fmt: skip
DENIED = [
    "bpf", "perf_event_open", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "keyctl", "add_key", "request_key",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "open_by_handle_at", "name_to_handle_at", "mount", "umount2", "pivot_root",
    "move_mount", "fsopen", "fsmount", "fsconfig", "fspick", "open_tree",
    "mount_setattr", "unshare", "setns", "ptrace", "process_vm_readv",
    "process_vm_writev", "reboot", "swapon", "swapoff", "syslog", "iopl",
    "ioperm", "acct", "settimeofday", "clock_settime", "adjtimex",
    "lookup_dcookie", "quotactl", "nfsservctl", "vhangup", "kcmp",
]  # fmt: skip


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def test_table_numbers_match_kernel_header():
    if not UNISTD_64.exists():
        pytest.skip(f"{UNISTD_64} is not installed")
    text = UNISTD_64.read_text()
    for name, nr in re.findall(r"#define __NR_(\w+) (\d+)", text):
        assert syscalls.SYSCALLS[int(nr)].name == name


def test_table_names_unique():
    assert len(syscalls.BY_NAME) == len(syscalls.SYSCALLS)


def test_table_reaches_current_kernel():
    assert syscalls.number("mseal") == 462
    assert syscalls.number("listns") == 470
    assert syscalls.MAX_SYSCALL >= 462


def test_x32_numbers_recognized():
    getpid = syscalls.number("getpid")
    assert syscalls.is_x32(getpid | syscalls.X32_SYSCALL_BIT)
    assert not syscalls.is_x32(getpid)
    assert not syscalls.is_x32(0xFFFFFFFFFFFFFFFF)  # orig_rax of -1, no call


def test_unknown_number_has_fallback_name():
    assert syscalls.name(400) == "syscall_400"


def test_every_syscall_classified(policy):
    for nr, entry in syscalls.SYSCALLS.items():
        rule = policy.rules.get(nr)
        assert rule is not None, f"{entry.name} ({nr}) has no policy row"
        assert rule.name == entry.name
        assert rule.cls in SyscallClass
        assert rule.reason


def test_policy_rows_name_known_syscalls(policy):
    assert set(policy.rules) == set(syscalls.SYSCALLS)


def test_denied_rows_carry_errno(policy):
    for rule in policy.rules.values():
        if rule.cls is SyscallClass.DENIED:
            assert rule.errno in (errno.EPERM, errno.ENOSYS, errno.EACCES)
        else:
            assert rule.errno == 0, rule.name


def test_unlisted_numbers_denied_enosys(policy):
    for nr in range(syscalls.MAX_SYSCALL + 64):
        if nr not in syscalls.SYSCALLS:
            rule = policy.rule(nr)
            assert rule.cls is SyscallClass.DENIED
            assert rule.errno == errno.ENOSYS


@pytest.mark.parametrize("name", PASSTHROUGH)
def test_passthrough_rows(policy, name):
    assert policy[name].cls is SyscallClass.PASSTHROUGH


@pytest.mark.parametrize("name", MEDIATED)
def test_mediated_rows(policy, name):
    assert policy[name].cls is SyscallClass.MEDIATED


@pytest.mark.parametrize("name", DENIED)
def test_denied_rows(policy, name):
    assert policy[name].cls is SyscallClass.DENIED


def test_clone_mediated_only_for_namespaces(policy):
    condition = policy["clone"].condition
    assert condition is not None
    thread_flags = 0x3D0F00  # what glibc's pthread_create passes
    assert not condition.matches((thread_flags, 0, 0, 0, 0, 0))
    assert condition.matches((0x10000000 | 17, 0, 0, 0, 0, 0))  # CLONE_NEWUSER
    assert condition.matches((0x00800000 | 17, 0, 0, 0, 0, 0))  # CLONE_UNTRACED


def test_sendto_mediated_only_with_address(policy):
    condition = policy["sendto"].condition
    assert condition is not None
    assert not condition.matches((3, 0x1000, 10, 0, 0, 0))
    assert condition.matches((3, 0x1000, 10, 0, 0x2000, 16))


def test_override_classes_applied():
    policy = load_policy(
        {
            "getpid": "mediated",
            "openat": "passthrough",
            "keyctl": "denied:ENOSYS",
            "read": "denied:EACCES",
            "mmap": "denied",
        }
    )
    assert policy["getpid"].cls is SyscallClass.MEDIATED
    assert policy["openat"].cls is SyscallClass.PASSTHROUGH
    assert policy["keyctl"].errno == errno.ENOSYS
    assert policy["read"].errno == errno.EACCES
    assert policy["mmap"].errno == errno.EPERM
    assert policy["read"].origin == "override"


def test_override_leaves_defaults_untouched():
    load_policy({"getpid": "mediated"})
    assert load_policy()["getpid"].cls is SyscallClass.PASSTHROUGH


def test_override_unknown_name_rejected():
    with pytest.raises(ConfigError) as info:
        load_policy({"getpdi": "passthrough"})
    assert "getpdi" in str(info.value)
    assert "getpid" in str(info.value)  # the suggestion


def test_override_invalid_class_rejected():
    with pytest.raises(ConfigError) as info:
        load_policy({"getpid": "allow"})
    message = str(info.value)
    assert "getpid" in message
    for allowed in ("passthrough", "mediated", "denied", "denied:EACCES"):
        assert allowed in message


def test_override_unknown_errno_rejected():
    with pytest.raises(ConfigError) as info:
        load_policy({"getpid": "denied:EBOGUS"})
    assert "getpid" in str(info.value)
    assert "EBOGUS" in str(info.value)


def test_override_errno_only_for_denied():
    with pytest.raises(ConfigError, match="getpid"):
        load_policy({"getpid": "mediated:EPERM"})


def test_override_non_string_rejected():
    with pytest.raises(ConfigError, match="getpid"):
        load_policy({"getpid": True})


def test_strict_mediates_everything_not_denied():
    default = load_policy()
    strict = load_policy(strict=True)
    assert strict.strict
    for nr, rule in strict.rules.items():
        if default.rules[nr].cls is SyscallClass.DENIED:
            assert rule == default.rules[nr]
        else:
            assert rule.cls is SyscallClass.MEDIATED, rule.name
            assert rule.condition is None, rule.name


def test_strict_overrides_apply_last():
    policy = load_policy({"getpid": "passthrough"}, strict=True)
    assert policy["getpid"].cls is SyscallClass.PASSTHROUGH
    assert policy["read"].cls is SyscallClass.MEDIATED


def test_table_config_read():
    policy = policy_from_table({"strict": True, "syscalls": {"read": "passthrough"}})
    assert policy.strict
    assert policy["read"].cls is SyscallClass.PASSTHROUGH
    assert policy["write"].cls is SyscallClass.MEDIATED


def test_table_config_strict_must_be_bool():
    with pytest.raises(ConfigError, match="strict"):
        policy_from_table({"strict": "yes"})


def test_table_config_syscalls_must_be_table():
    with pytest.raises(ConfigError, match="syscalls"):
        policy_from_table({"syscalls": ["getpid"]})


def test_relaxing_denied_row_warns(caplog):
    load_policy({"ptrace": "passthrough"})
    assert "ptrace" in caplog.text


def test_docs_list_every_row(policy):
    if not DOCS.exists():
        pytest.skip(f"{DOCS} is missing")
    text = DOCS.read_text()
    for rule in policy.rules.values():
        row = f"| `{rule.name}` | {rule.cls.value}"
        assert row in text, f"{os.path.basename(DOCS)} lacks the row for {rule.name}"

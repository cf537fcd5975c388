"""The seccomp filters built from the sentry's policy.

Safety: every filter is loaded in a child that the test forks and reaps, never
in the pytest process. The denied calls tried here are harmless even if a
filter failed to load: they get zero or NULL arguments, or flags of 0.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import signal
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from stockade.sentry import ptrace_raw, seccomp_filter, syscalls
from stockade.sentry.policy import load_policy

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

BPF_RET = 0x06
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
SECCOMP_DATA_ARCH = 4

# An i386 getpid through int 0x80, then exit_group(0) if it returned a pid,
# exit_group(3) otherwise. No libc, so nothing else runs before the test call.
I386_HELPER = r"""
void _start(void) {
    long result, code;
    __asm__ volatile ("int $0x80" : "=a"(result) : "a"(20L) : "memory");
    code = result > 0 ? 0 : 3;
    __asm__ volatile ("syscall" : : "a"(231L), "D"(code) : "rcx", "r11", "memory");
    for (;;) {}
}
"""


def raw_syscall(nr: int, *args: int) -> tuple[int, int]:
    """Call syscall(2) and return (result, errno)."""
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return result, ctypes.get_errno() if result == -1 else 0


def run_in_child(body: Callable[[], dict]) -> tuple[int, dict]:
    """Fork, run BODY in the child, and return its wait status and result dict.

    The child never returns into pytest: it leaves through os._exit.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(body()).encode())
        except BaseException:
            code = 99
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    return status, json.loads(output) if output else {}


def assert_exited_cleanly(status: int) -> None:
    assert os.WIFEXITED(status), f"child died by signal {os.WTERMSIG(status)}"
    assert os.WEXITSTATUS(status) == 0, "child raised before reporting"


def nr(name: str) -> int:
    return syscalls.number(name)


def bpf_instructions(raw: bytes) -> list[tuple[int, int, int, int]]:
    return list(struct.iter_unpack("<HBBI", raw))


@pytest.fixture(scope="module")
def i386_helper(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    directory = tmp_path_factory.mktemp("i386")
    source = directory / "int80.c"
    source.write_text(I386_HELPER)
    binary = directory / "int80"
    command = ["gcc", "-static", "-nostdlib", "-O1", "-o", str(binary), str(source)]
    subprocess.run(command, check=True, capture_output=True)
    return binary


def test_bpf_checks_architecture_first():
    code = bpf_instructions(seccomp_filter.export_bpf(load_policy()))
    assert code[0] == (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH)
    assert code[1][0] == BPF_JEQ_K
    assert code[1][3] == syscalls.AUDIT_ARCH_X86_64


def test_bpf_rejects_x32_numbers():
    code = bpf_instructions(seccomp_filter.export_bpf(load_policy()))
    x32_checks = [
        i for i, ins in enumerate(code[:8])
        if ins[0] == BPF_JGE_K and ins[3] == syscalls.X32_SYSCALL_BIT
    ]  # fmt: skip
    assert x32_checks
    kill = (BPF_RET, 0, 0, seccomp_filter.BAD_ARCH_ACTION)
    assert kill in code[x32_checks[0] : x32_checks[0] + 4]


def test_bpf_adds_no_other_architecture():
    code = bpf_instructions(seccomp_filter.export_bpf(load_policy()))
    arch_checks = [ins for ins in code if ins[0] == BPF_JEQ_K and ins[3] in (
        syscalls.AUDIT_ARCH_I386, syscalls.AUDIT_ARCH_X86_64)]  # fmt: skip
    assert [ins[3] for ins in arch_checks] == [syscalls.AUDIT_ARCH_X86_64]


def test_filtered_child_passthrough_works():
    def body() -> dict:
        expected = os.getpid()
        seccomp_filter.install(load_policy())
        return {"getpid": raw_syscall(nr("getpid")), "expected": expected}

    status, result = run_in_child(body)
    assert_exited_cleanly(status)
    assert result["getpid"] == [result["expected"], 0]


def test_filtered_child_denied_fail_with_errno():
    calls = {
        "keyctl": (nr("keyctl"), 0, 0, 0, 0, 0),
        "bpf": (nr("bpf"), 0, 0, 0),
        "perf_event_open": (nr("perf_event_open"), 0, 0, -1, -1, 0),
        "userfaultfd": (nr("userfaultfd"), 0),
        "io_uring_setup": (nr("io_uring_setup"), 0, 0),
        "unshare": (nr("unshare"), 0),
        "unknown": (1000,),
    }

    def body() -> dict:
        seccomp_filter.install(load_policy())
        return {name: raw_syscall(*call) for name, call in calls.items()}

    status, result = run_in_child(body)
    assert_exited_cleanly(status)
    assert result["keyctl"] == [-1, errno.EPERM]
    assert result["bpf"] == [-1, errno.EPERM]
    assert result["perf_event_open"] == [-1, errno.EPERM]
    assert result["userfaultfd"] == [-1, errno.EPERM]
    assert result["io_uring_setup"] == [-1, errno.ENOSYS]
    assert result["unshare"] == [-1, errno.EPERM]
    assert result["unknown"] == [-1, errno.ENOSYS]


def test_filtered_child_override_errno():
    def body() -> dict:
        seccomp_filter.install(load_policy({"getppid": "denied:EACCES"}))
        return {"getppid": raw_syscall(nr("getppid"))}

    status, result = run_in_child(body)
    assert os.WIFEXITED(status)
    assert result["getppid"] == [-1, errno.EACCES]


def test_mediated_without_tracer_fails_enosys():
    def body() -> dict:
        seccomp_filter.install(load_policy())
        return {
            "openat": raw_syscall(nr("openat"), ptrace_raw.AT_FDCWD, 0, 0, 0),
            "prlimit_self": raw_syscall(nr("prlimit64"), 0, 7, 0, 0),
            "prlimit_other": raw_syscall(nr("prlimit64"), 1, 7, 0, 0),
            "sendto_connected": raw_syscall(nr("sendto"), -1, 0, 0, 0, 0, 0),
            "sendto_address": raw_syscall(nr("sendto"), -1, 0, 0, 0, 4096, 16),
        }

    status, result = run_in_child(body)
    assert_exited_cleanly(status)
    assert result["openat"] == [-1, errno.ENOSYS]
    assert result["prlimit_self"] == [0, 0]
    assert result["prlimit_other"] == [-1, errno.ENOSYS]
    assert result["sendto_connected"] == [-1, errno.EBADF]
    assert result["sendto_address"] == [-1, errno.ENOSYS]


def test_x32_syscall_kills_child():
    def body() -> dict:
        seccomp_filter.install(load_policy())
        return {"x32": raw_syscall(nr("getpid") | syscalls.X32_SYSCALL_BIT)}

    status, result = run_in_child(body)
    assert os.WIFSIGNALED(status), f"child survived an x32 call: {result}"
    assert os.WTERMSIG(status) == signal.SIGSYS


def test_i386_syscall_kills_child(i386_helper):
    unfiltered = subprocess.run([str(i386_helper)], check=False)
    if unfiltered.returncode != 0:
        pytest.skip("the kernel runs no i386 calls (no IA32 emulation)")
    policy = load_policy({"execve": "passthrough"})

    def body() -> dict:
        seccomp_filter.install(policy)
        os.execv(str(i386_helper), [str(i386_helper)])
        return {}

    status, _ = run_in_child(body)
    assert os.WIFSIGNALED(status), "an i386 call passed the filter"
    assert os.WTERMSIG(status) == signal.SIGSYS


def test_tracer_sees_mediated_call():
    path = b"/nonexistent/stockade-mediated\0"
    pid = os.fork()
    if pid == 0:
        try:
            buffer = ctypes.create_string_buffer(path)
            ptrace_raw.traceme()
            os.kill(os.getpid(), signal.SIGSTOP)
            seccomp_filter.install(load_policy())
            address = ctypes.addressof(buffer)
            _, err = raw_syscall(nr("openat"), ptrace_raw.AT_FDCWD, address, 0, 0)
            os._exit(err)
        finally:
            os._exit(99)
    reaped = False
    try:
        _, status = ptrace_raw.wait(pid)
        assert status.stopped and status.stop_signal == signal.SIGSTOP
        ptrace_raw.set_options(pid, ptrace_raw.SANDBOX_OPTIONS)
        ptrace_raw.cont(pid)
        _, status = ptrace_raw.wait(pid)
        assert status.is_seccomp_stop
        assert ptrace_raw.get_event_msg(pid) == nr("openat")
        regs = ptrace_raw.get_regs(pid)
        assert regs.syscall_nr() == nr("openat")
        assert ptrace_raw.read_string(pid, regs.syscall_args()[1]) == path[:-1]
        regs.orig_rax = -1 & 0xFFFFFFFFFFFFFFFF  # skip the call
        regs.set_return(-errno.EACCES)
        ptrace_raw.set_regs(pid, regs)
        ptrace_raw.cont(pid)
        _, status = ptrace_raw.wait(pid)
        reaped = status.exited or status.signaled
        assert status.exited
        assert status.exit_code == errno.EACCES
    finally:
        if not reaped:
            _kill_and_reap(pid)


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, ptrace_raw.WALL)
    except ChildProcessError:
        pass


def test_sentry_filter_allows_tracer_calls():
    def body() -> dict:
        seccomp_filter.install_sentry_filter()
        return {
            "getpid": raw_syscall(nr("getpid"))[1],
            "socket": raw_syscall(nr("socket"), 1, 1, 0),
            "keyctl": raw_syscall(nr("keyctl"), 0, 0, 0, 0, 0),
        }

    status, result = run_in_child(body)
    assert_exited_cleanly(status)
    assert result["getpid"] == 0
    assert result["socket"] == [-1, errno.EPERM]
    assert result["keyctl"] == [-1, errno.EPERM]


def test_sentry_filter_kills_x32():
    def body() -> dict:
        seccomp_filter.install_sentry_filter()
        return {"x32": raw_syscall(nr("getpid") | syscalls.X32_SYSCALL_BIT)}

    status, result = run_in_child(body)
    assert os.WIFSIGNALED(status), f"child survived an x32 call: {result}"
    assert os.WTERMSIG(status) == signal.SIGSYS

"""Ways out of the sandbox, tried from inside a container; every one must fail.

The forbidden calls run only inside the container, through tests/programs/escape.c.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
from pathlib import Path

import pytest
from conftest import join_pid_namespace
from programs import install, programs  # noqa: F401  (fixture)
from stockade.sentry.policy import SyscallClass, load_policy

pytestmark = pytest.mark.both_file_access

TESTS = Path(__file__).resolve().parent


def escape(stockade, make_bundle, programs, *args: str, pid_namespace: str = ""):  # noqa: F811
    """Run escape ARGS in a container; return {name: result}.

    With PID_NAMESPACE, the container joins that PID namespace.
    """
    edit = join_pid_namespace(pid_namespace) if pid_namespace else None
    bundle = make_bundle("/bin/escape", *args, edit=edit)
    install(bundle, programs, "escape")
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def test_denied_calls_fail_with_policy_errno(stockade, make_bundle, programs):  # noqa: F811
    policy = load_policy()
    denied = sorted(policy.numbers(SyscallClass.DENIED))
    results = escape(stockade, make_bundle, programs, "denied", *map(str, denied))
    for nr in denied:
        rule = policy.rule(nr)
        assert results[f"nr_{nr}"] == f"errno={rule.errno}", f"{rule.name} ({nr})"


def test_x32_call_kills_process(stockade, make_bundle, programs):  # noqa: F811
    results = escape(stockade, make_bundle, programs, "x32")
    assert results["x32_getpid"] == f"signal={int(signal.SIGSYS)}"


def test_i386_call_kills_process(stockade, make_bundle, programs):  # noqa: F811
    results = escape(stockade, make_bundle, programs, "i386")
    assert results["i386_getpid"] == f"signal={int(signal.SIGSYS)}"


def test_sandbox_process_unreachable(stockade, make_bundle, programs, pod_pid_namespace):  # noqa: F811  # fmt: skip
    # A sandbox is visible only from a PID namespace joined by path, such as a
    # pod's, where PID 1 is the pod's sandbox process.
    path = pod_pid_namespace
    results = escape(stockade, make_bundle, programs, "sentry", pid_namespace=path)
    for name in ("kill_1_KILL", "kill_1_TERM", "tgkill_1", "tkill_1", "ptrace_attach_1",
                 "ptrace_seize_1", "ptrace_traceme", "process_vm_readv_1",
                 "pidfd_send_signal_1"):  # fmt: skip
        assert results[name] == f"errno={errno.EPERM}", name
    assert results["open_proc_1_mem"] == f"errno={errno.EACCES}"


def test_new_namespaces_refused(stockade, make_bundle, programs):  # noqa: F811
    results = escape(stockade, make_bundle, programs, "clone")
    for name in (
        "clone_newuser",
        "clone_newns",
        "clone_newnet",
        "clone_newpid",
        "clone_untraced",
    ):
        assert results[name] == f"errno={errno.EPERM}", name
    assert results["clone3"] == f"errno={errno.ENOSYS}"


def test_own_filter_cannot_be_lifted(stockade, make_bundle, programs):  # noqa: F811
    results = escape(stockade, make_bundle, programs, "lift")
    assert results["mount_after_lift"] == f"errno={errno.EPERM}"
    assert results["unshare_after_lift"] == f"errno={errno.EPERM}"


def test_host_processes_invisible(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "cat /proc/[0-9]*/comm")
    names = set(stockade.ok("run", "--bundle", str(bundle), "c1").stdout.split())
    assert names <= {"sh", "cat"}


def test_policy_override_from_config(stockade, make_bundle, programs, tmp_path):  # noqa: F811
    config = tmp_path / "config.toml"
    config.write_text('[plugins.ptrace.syscalls]\ngetppid = "denied:EACCES"\n')
    stockade.env["STOCKADE_CONFIG"] = str(config)
    results = escape(stockade, make_bundle, programs, "denied", "110")  # getppid
    assert results["nr_110"] == f"errno={errno.EACCES}"


def test_policy_override_invalid_name(stockade, make_bundle, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[plugins.ptrace.syscalls]\ngetpidd = "denied"\n')
    bundle = make_bundle("true")
    result = stockade("--config", str(config), "run", "--bundle", str(bundle), "c1")
    assert result.returncode == 1
    assert "getpidd" in result.stderr


def test_debug_trace_shows_openat(stockade, make_bundle):
    bundle = make_bundle("cat", "/etc/passwd")
    result = stockade.ok("--debug", "run", "--bundle", str(bundle), "c1")
    assert 'openat(AT_FDCWD, "/etc/passwd", 0x0, 0o0) = 3' in result.stderr


def test_strict_mode_traces_reads(stockade, make_bundle, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[plugins.ptrace]\nstrict = true\n")
    bundle = make_bundle("cat", "/etc/passwd")
    result = stockade.ok(
        "--config", str(config), "--debug", "run", "--bundle", str(bundle), "c1"
    )
    assert "root:x:0:0" in result.stdout
    assert "] close(3) = 0" in result.stderr


def test_audit_plugin_writes_json(stockade, make_bundle, tmp_path):
    audit = tmp_path / "audit.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(f'[plugins.audit]\npath = "{audit}"\n')
    bundle = make_bundle("cat", "/etc/passwd")
    stockade.ok("--config", str(config), "run", "--bundle", str(bundle), "c1")
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    opens = [
        r for r in records if r["syscall"] == "openat" and r["args"][1] == "/etc/passwd"
    ]
    assert len(opens) == 1
    assert opens[0]["container"] == "c1"
    assert opens[0]["result"] == 3


@pytest.fixture(scope="session")
def veto_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_plugins import pip_install_target

    target = tmp_path_factory.mktemp("veto-site")
    pip_install_target(TESTS / "veto_plugin", target)
    return target


def test_veto_plugin_denies_open(stockade, make_bundle, veto_site):
    stockade.env["PYTHONPATH"] = str(veto_site)
    bundle = make_bundle("sh", "-c", "cat /secret; echo rc=$?; cat /public")
    (bundle / "rootfs" / "secret").write_text("SECRET\n")
    (bundle / "rootfs" / "public").write_text("ok\n")
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    assert "rc=1" in result.stdout
    assert "ok" in result.stdout
    assert "SECRET" not in result.stdout


def test_path_swap_race_never_wins(stockade, make_bundle, programs, veto_site):  # noqa: F811
    """A thread rewrites the path between the sentry's check and the kernel's read."""
    stockade.env["PYTHONPATH"] = str(veto_site)
    bundle = make_bundle("/bin/race", "/public", "/secret", "3000")
    install(bundle, programs, "race")
    (bundle / "rootfs" / "secret").write_text("SECRET\n")
    (bundle / "rootfs" / "public").write_text("ok\n")
    result = stockade.ok("run", "--bundle", str(bundle), "c1", timeout=120)
    counts = {
        k: int(v) for k, v in (line.split() for line in result.stdout.splitlines())
    }
    assert counts["opened_secret"] == 0
    assert counts["opened_allowed"] > 0
    assert counts["denied"] > 0


def test_capabilities_from_spec(stockade, make_bundle):
    def grant(config):  # type: ignore[no-untyped-def]
        caps = ["CAP_KILL", "CAP_SYS_PTRACE"]
        config["process"]["capabilities"] = {
            "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps,
        }  # fmt: skip

    bundle = make_bundle("grep", "Cap", "/proc/self/status", edit=grant)
    lines = dict(
        line.split(":\t")
        for line in stockade.ok(
            "run", "--bundle", str(bundle), "c1"
        ).stdout.splitlines()
    )
    assert (
        lines["CapEff"] == f"{1 << 5:016x}"
    )  # CAP_KILL; CAP_SYS_PTRACE is never granted
    assert lines["CapBnd"] == f"{1 << 5:016x}"
    assert lines["CapAmb"] == f"{0:016x}"  # ambient needs inheritable, which is empty


def test_sandbox_confines_itself(stockade, make_bundle):
    bundle = make_bundle("sleep", "30")
    stockade.ok("create", "--bundle", str(bundle), "c1")
    stockade.ok("start", "c1")
    pid = stockade.state("c1")["pid"]
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    stockade.ok("delete", "--force", "c1")
    assert status["Seccomp"] == "2"
    assert int(status["CapEff"], 16) == (1 << 5) | (1 << 19)  # CAP_KILL, CAP_SYS_PTRACE


def test_notification_listener_refused(stockade, make_bundle, programs):  # noqa: F811
    """A listener's USER_NOTIF outranks TRACE, so it would bypass the sandbox."""
    results = escape(stockade, make_bundle, programs, "notify")
    assert results["seccomp_new_listener"] == f"errno={errno.EPERM}"


def test_calls_aimed_at_sandbox_refused(stockade, make_bundle, programs, pod_pid_namespace):  # noqa: F811  # fmt: skip
    path = pod_pid_namespace
    results = escape(stockade, make_bundle, programs, "targets", pid_namespace=path)
    for name in ("pidfd_open_1", "rt_sigqueueinfo_1", "rt_tgsigqueueinfo_1", "prlimit64_1",
                 "sched_setaffinity_1", "setpriority_1"):  # fmt: skip
        assert results[name] == f"errno={errno.EPERM}", name


def test_device_nodes_refused(stockade, make_bundle, programs):  # noqa: F811
    def grant_mknod(config):  # type: ignore[no-untyped-def]
        caps = ["CAP_MKNOD", "CAP_DAC_OVERRIDE"]
        config["process"]["capabilities"] = {
            k: caps for k in ("bounding", "effective", "permitted")
        }

    bundle = make_bundle("/bin/escape", "devices", edit=grant_mknod)
    install(bundle, programs, "escape")
    os.mknod(bundle / "rootfs" / "image-null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    results = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    for name in ("mknod_char", "mknod_block", "mknodat_char"):
        assert results[name] == f"errno={errno.EPERM}", name
    assert results["mknod_fifo"] == "ok"
    assert results["open_image_device"] == f"errno={errno.EACCES}"


def test_forged_trace_data_ignored(stockade, make_bundle, programs):  # noqa: F811
    """A filter of the application's own cannot pass clone off as openat."""
    results = escape(stockade, make_bundle, programs, "forge")
    assert results["forging_filter"] == "ok"
    assert results["forged_clone_newuser"] == f"errno={errno.EPERM}"
    assert results["forged_clone_untraced"] == f"errno={errno.EPERM}"
    assert results["plain_fork_still_works"] == "ok"

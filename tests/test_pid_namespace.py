"""PID namespaces: the init's own, where it is PID 1 as under runc, and joined ones."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import STOCKADE, join_pid_namespace

pytestmark = pytest.mark.both_file_access


@pytest.fixture
def sleeping(stockade, make_bundle):  # type: ignore[no-untyped-def]
    """Start container c1 running `sleep 100`; delete it after the test."""
    stockade.ok("create", "--bundle", str(make_bundle("sleep", "100")), "c1")
    stockade.ok("start", "c1")
    yield stockade
    stockade("delete", "--force", "c1")


def start(stockade, bundle) -> None:  # type: ignore[no-untyped-def]
    stockade.ok("create", "--bundle", str(bundle), "c1")
    stockade.ok("start", "c1")


def exit_status(stockade) -> int:  # type: ignore[no-untyped-def]
    """Wait for c1 to stop and return its exit status."""
    return json.loads(stockade.ok("wait", "c1").stdout)["exitStatus"]


def still_running(stockade, seconds: float = 0.5) -> bool:  # type: ignore[no-untyped-def]
    time.sleep(seconds)
    return stockade.state("c1")["status"] == "running"


def wait_for_file(path: Path, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.exists()


def process_state(host_pid: int) -> str:
    with open(f"/proc/{host_pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def namespace_pids(host_pid: int) -> list[int]:
    with open(f"/proc/{host_pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(field) for field in line.split()[1:]]
    return []


# --- what the application sees --------------------------------------------------


def test_init_is_pid_1(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "echo $$; cat /proc/1/comm; echo end")

    output = stockade.ok("run", "--bundle", str(bundle), "c1").stdout

    assert output.split() == ["1", "sh", "end"]


def test_init_has_no_parent(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "echo $PPID; echo end")

    output = stockade.ok("run", "--bundle", str(bundle), "c1").stdout

    assert output.split() == ["0", "end"]


def test_exec_sees_init_as_pid_1(sleeping):
    script = "cat /proc/1/cmdline; echo; echo $$"

    lines = sleeping.ok("exec", "c1", "sh", "-c", script).stdout.splitlines()

    assert lines[0] == "sleep\x00100\x00"
    assert int(lines[1]) > 1


def test_proc_lists_no_sandbox(sleeping):
    script = "for p in /proc/[0-9]*; do echo ${p#/proc/} $(cat $p/comm); done; echo end"

    output = sleeping.ok("exec", "c1", "sh", "-c", script).stdout
    rows = [line.split() for line in output.splitlines()[:-1]]
    names = {row[1] for row in rows if len(row) == 2}

    assert ["1", "sleep"] in rows, output
    assert names <= {"sleep", "sh", "cat"}, f"a runtime process is visible:\n{output}"


def test_ps_lists_only_application(sleeping):
    output = sleeping.ok("exec", "c1", "ps", "-o", "pid,comm").stdout
    rows = [line.split() for line in output.splitlines()[1:]]

    assert ["1", "sleep"] in rows, output
    assert {row[1] for row in rows} == {"sleep", "ps"}, output


def test_proc_mount_is_own(sleeping):
    output = sleeping.ok("exec", "c1", "cat", "/proc/self/mountinfo").stdout
    points = [line.split()[4] for line in output.splitlines()]

    assert points.count("/proc") == 1, f"/proc is mounted more than once:\n{output}"


def test_exec_pid_file_names_host_pid(sleeping, tmp_path):
    pid_file = tmp_path / "exec.pid"
    command = [STOCKADE, "--root", str(sleeping.root), "exec", "--pid-file",
               str(pid_file), "c1", "sh", "-c", "echo $$; sleep 2"]  # fmt: skip

    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                          env=sleeping.env) as process:  # fmt: skip
        inner = int(process.stdout.readline())
        deadline = time.monotonic() + 5
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        host_pid = int(pid_file.read_text())
        pids = namespace_pids(host_pid)

    assert inner > 1
    assert pids[-1] == inner, f"pid file names {host_pid}, which is {pids}"


def test_ps_command_lists_application(sleeping, tmp_path):
    pid_file = tmp_path / "exec.pid"
    sleeping.ok("exec", "-d", "--pid-file", str(pid_file), "c1", "sleep", "30")

    pids = json.loads(sleeping.ok("ps", "--format", "json", "c1").stdout)
    inner = sorted(namespace_pids(pid)[-1] for pid in pids)
    sleeping.ok("kill", "c1", "KILL")
    os.waitpid(int(pid_file.read_text()), 0)

    assert len(pids) == 2, pids
    assert inner[0] == 1, "the init is not listed"


# --- signals --------------------------------------------------------------------


def test_term_leaves_init_without_handler(sleeping):
    sleeping.ok("kill", "c1", "TERM")

    assert still_running(sleeping), "SIGTERM ended a PID 1 that has no handler"


def test_term_reaches_init_handler(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "trap 'exit 3' TERM; sleep 100 & wait")
    start(stockade, bundle)
    time.sleep(0.3)  # let the shell install its trap

    stockade.ok("kill", "c1", "TERM")
    status = exit_status(stockade)
    stockade.ok("delete", "c1")

    assert status == 3


def test_kill_ends_init(sleeping):
    sleeping.ok("kill", "c1", "KILL")

    assert exit_status(sleeping) == 128 + 9


def test_own_kill_leaves_init(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "kill -9 $$; echo alive; exit 4")

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.stdout == "alive\n"
    assert result.returncode == 4


def test_exec_signal_reaches_init_handler(stockade, make_bundle):
    script = "trap 'echo hup > /tmp/hup' HUP; while true; do sleep 0.1; done"
    bundle = make_bundle("sh", "-c", script)
    start(stockade, bundle)
    time.sleep(0.3)  # let the shell install its trap

    sent = stockade("exec", "c1", "kill", "-HUP", "1")
    reached = wait_for_file(bundle / "rootfs" / "tmp" / "hup")
    stockade.ok("delete", "--force", "c1")

    assert sent.returncode == 0, sent.stderr
    assert reached, "the init's SIGHUP handler did not run"


def test_exec_kill_leaves_init(sleeping):
    sleeping.ok("exec", "c1", "kill", "-9", "1")

    assert still_running(sleeping), "a SIGKILL from inside ended PID 1"


def test_exec_stop_leaves_init(sleeping):
    init = json.loads(sleeping.ok("ps", "--format", "json", "c1").stdout)[0]

    sleeping.ok("exec", "c1", "kill", "-STOP", "1")
    time.sleep(0.3)

    assert process_state(init) == "S", "a SIGSTOP from inside stopped PID 1"


def test_outside_stop_stops_init(sleeping):
    init = json.loads(sleeping.ok("ps", "--format", "json", "c1").stdout)[0]

    sleeping.ok("kill", "c1", "STOP")
    time.sleep(0.3)
    stopped = process_state(init)
    sleeping.ok("kill", "c1", "CONT")
    time.sleep(0.3)

    assert stopped in ("T", "t"), "a SIGSTOP from outside left PID 1 running"
    assert process_state(init) == "S"


def test_init_exit_ends_other_processes(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "sleep 100 & sleep 0.2; exit 6")

    result = stockade("run", "--bundle", str(bundle), "c1", timeout=20)

    assert result.returncode == 6


# --- joining a PID namespace by path ---------------------------------------------


def test_joined_namespace_is_shared(stockade, make_bundle, host_pid_namespace):
    edit = join_pid_namespace(host_pid_namespace)
    bundle = make_bundle("sh", "-c", "echo $$; cat /proc/1/comm; echo end", edit=edit)

    output = stockade.ok("run", "--bundle", str(bundle), "c1").stdout.split()

    assert output[1:] == ["sleep", "end"]
    assert int(output[0]) > 1


def test_pod_member_sees_pod_init(stockade, make_bundle, pod_pid_namespace):
    """A container that joins another's PID namespace, as a pod does, sees its init."""
    edit = join_pid_namespace(pod_pid_namespace)
    script = "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"
    bundle = make_bundle("sh", "-c", script, edit=edit)

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.returncode == 0, result.stderr
    assert "sleep 100" in result.stdout


def test_pod_survives_member_exit(stockade, make_bundle, pod_pid_namespace):
    """A member's exit ends its own processes only, not the pod's."""
    bundle = make_bundle("true", edit=join_pid_namespace(pod_pid_namespace))

    stockade.ok("run", "--bundle", str(bundle), "c1")
    time.sleep(0.3)

    assert stockade.state("pod")["status"] == "running"


def test_pod_member_ps_lists_own(stockade, make_bundle, pod_pid_namespace):
    """ps of a pod member lists its own processes, not the pod's, and the reverse."""
    start(stockade, make_bundle("sleep", "99", edit=join_pid_namespace(pod_pid_namespace)))

    member = stockade.ok("ps", "c1").stdout
    pod = stockade.ok("ps", "pod").stdout
    stockade("delete", "--force", "c1")

    assert "sleep 99" in member
    assert "sleep 100" not in member
    assert "sleep 100" in pod
    assert "sleep 99" not in pod


def test_pod_member_kill_all_spares_pod(stockade, make_bundle, pod_pid_namespace):
    """kill --all of a pod member signals its own processes only."""
    start(stockade, make_bundle("sleep", "99", edit=join_pid_namespace(pod_pid_namespace)))
    stockade.ok("exec", "--detach", "c1", "sleep", "98")

    stockade.ok("kill", "--all", "c1", "KILL")
    deadline = time.monotonic() + 10
    while stockade.state("c1")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    member = stockade.state("c1")["status"]
    pod = stockade.state("pod")["status"]
    stockade("delete", "--force", "c1")

    assert member == "stopped"
    assert pod == "running"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/proc/999999999/ns/pid", "does not exist"),
        ("proc/1/ns/pid", "must be an absolute path"),
        ("/proc/self/ns/net", "is a network namespace, not a pid one"),
        ("/etc/passwd", "is not a namespace"),
    ],
)
def test_bad_namespace_path_named(stockade, make_bundle, path, expected):
    bundle = make_bundle("true", edit=join_pid_namespace(path))

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.returncode == 1
    assert f"linux.namespaces pid path {path}" in result.stderr, result.stderr
    assert expected in result.stderr, result.stderr

"""`stockade exec`: more processes in a running container, on the same platform."""

from __future__ import annotations

import json
import os
import time

import pytest
from stockade import linux


@pytest.fixture
def running(stockade, make_bundle):  # type: ignore[no-untyped-def]
    def hostname(config):  # type: ignore[no-untyped-def]
        config["hostname"] = "exec-test"

    stockade.ok(
        "create", "--bundle", str(make_bundle("sleep", "60", edit=hostname)), "c1"
    )
    stockade.ok("start", "c1")
    yield stockade
    stockade("delete", "--force", "c1")


@pytest.fixture
def subreaper():  # type: ignore[no-untyped-def]
    """Make this test process adopt orphans, as conmon does, to reap the waiter."""
    linux.prctl(
        linux.PR_SET_CHILD_SUBREAPER, 1
    )  # conftest sets it too; this names the reason
    yield


def test_exec_output_and_exit_code(running):
    result = running("exec", "c1", "sh", "-c", "hostname; exit 3")
    assert result.returncode == 3
    assert result.stdout == "exec-test\n"


def test_exec_stdin_passes_through(running):
    result = running("exec", "c1", "cat", input="typed\n")
    assert result.stdout == "typed\n"


def test_exec_runs_under_the_filter(running):
    result = running("exec", "c1", "sh", "-c", "mount -t tmpfs none /mnt; echo $?")
    assert result.stdout.strip() != "0"


def test_exec_options(running):
    result = running("exec", "--user", "1000:1001", "--cwd", "/tmp", "-e", "EXTRA=1",
                     "c1", "sh", "-c", "id -u; id -g; pwd; echo $EXTRA")  # fmt: skip
    assert result.stdout.split() == ["1000", "1001", "/tmp", "1"]


def test_exec_process_file(running, tmp_path):
    process = {
        "args": ["sh", "-c", "echo from-file $FOO"],
        "env": ["PATH=/bin", "FOO=bar"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
    }
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    result = running("exec", "--process", str(path), "c1")
    assert result.stdout == "from-file bar\n"


def test_exec_missing_executable(running):
    result = running("exec", "c1", "/no/such/program")
    assert result.returncode == 1
    assert "/no/such/program" in result.stderr


def test_exec_in_stopped_container(stockade, make_bundle):
    stockade.ok("create", "--bundle", str(make_bundle("true")), "c1")
    stockade.ok("start", "c1")
    time.sleep(0.3)
    result = stockade("exec", "c1", "true")
    stockade.ok("delete", "--force", "c1")
    assert result.returncode == 1
    assert "needs a running container" in result.stderr


def test_exec_detach_waiter_exit_status(running, subreaper, tmp_path):
    pid_file = tmp_path / "exec.pid"
    running.ok(
        "exec", "--detach", "--pid-file", str(pid_file), "c1", "sh", "-c", "exit 5"
    )
    waiter = int(pid_file.read_text())
    _, status = os.waitpid(waiter, 0)
    assert os.waitstatus_to_exitcode(status) == 5


def test_exec_process_listed_by_ps(running, subreaper, tmp_path):
    pid_file = tmp_path / "exec.pid"
    running.ok("exec", "-d", "--pid-file", str(pid_file), "c1", "sleep", "30")
    pids = json.loads(running.ok("ps", "--format", "json", "c1").stdout)
    running.ok("kill", "--all", "c1", "KILL")
    os.waitpid(int(pid_file.read_text()), 0)
    assert len(pids) == 2  # the init and the exec'd sleep, not the runtime's helpers


def test_exec_launcher_protected(running):
    """Neither the sandbox process nor the exec launcher takes the application's signals."""
    script = (
        "for p in /proc/[0-9]*; do grep -q stockade $p/comm 2>/dev/null || continue; "
        "kill -9 ${p#/proc/} 2>/dev/null; echo ${p#/proc/}=$?; done"
    )
    results = running.ok("exec", "c1", "sh", "-c", script).stdout.split()
    assert len(results) == 2
    assert all(result.endswith("=1") for result in results)
    assert running("exec", "c1", "true").returncode == 0


def test_exec_tty_through_console_socket(running, tmp_path):
    from test_terminal import ConsoleSocket

    console = ConsoleSocket(
        tmp_path / "exec-console.sock", b"echo via-$((3*3)); exit 4\n"
    )
    result = running("exec", "--tty", "--console-socket", str(console.path), "c1", "sh")
    output = console.close()
    assert result.returncode == 4
    assert b"via-9\n" in output


def test_exec_tty_needs_console_socket(running):
    result = running("exec", "--tty", "c1", "sh")
    assert result.returncode == 1
    assert "--console-socket" in result.stderr


def test_kill_all_spares_sandbox_helpers(running):
    """kill(-1) from the application never reaches the exec launcher or the init."""
    result = running(
        "exec", "c1", "sh", "-c", "kill -ALRM -1; kill -STOP -1; echo sent"
    )
    assert "sent" in result.stdout
    after = running("exec", "c1", "echo", "still-works", timeout=20)
    assert after.stdout == "still-works\n"
    assert running.state("c1")["status"] == "running"


def test_exec_uid_minus_one_rejected(running):
    result = running("exec", "--user", "4294967295", "c1", "id", "-u")
    assert result.returncode == 1
    assert "4294967295" in result.stderr

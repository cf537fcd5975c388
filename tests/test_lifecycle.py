"""create, start, state, kill, delete and run on real busybox containers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest


def test_run_prints_output(stockade, make_bundle):
    bundle = make_bundle("echo", "hello")
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    assert result.stdout == "hello\n"


def test_run_exit_code(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "exit 7")
    assert stockade("run", "--bundle", str(bundle), "c1").returncode == 7


def test_run_killed_by_signal_is_128_plus_n(stockade, make_bundle):
    # The init is PID 1 of its PID namespace and ignores a SIGKILL it sends
    # itself, so the signal comes from outside.
    with run_in_background(stockade, make_bundle("sleep", "30")) as process:
        stockade.ok("kill", "c1", "KILL")
        code = process.wait(timeout=10)

    assert code == 128 + signal.SIGKILL


def test_create_start_delete(stockade, make_bundle, tmp_path):
    bundle = make_bundle("sleep", "30")
    pid_file = tmp_path / "pid"
    stockade.ok("create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1")
    state = stockade.state("c1")
    assert state["status"] == "created"
    assert pid_file.read_text() == str(state["pid"])
    stockade.ok("start", "c1")
    assert stockade.state("c1")["status"] == "running"
    stockade.ok("kill", "c1", "KILL")
    deadline = time.monotonic() + 5
    while stockade.state("c1")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stockade.state("c1")["status"] == "stopped"
    stockade.ok("delete", "c1")
    assert not os.path.exists(stockade.root / "c1")


def test_run_detach_leaves_running(stockade, make_bundle):
    bundle = make_bundle("sleep", "30")

    stockade.ok("run", "--detach", "--bundle", str(bundle), "c1")
    status = stockade.state("c1")["status"]
    stockade.ok("delete", "--force", "c1")

    assert status == "running"


@contextlib.contextmanager
def run_in_background(stockade, bundle):  # type: ignore[no-untyped-def]
    """Start `stockade run` of BUNDLE as c1; yield the process once c1 is running."""
    executable = os.path.join(os.path.dirname(sys.executable), "stockade")
    command = [
        executable,
        "--root",
        str(stockade.root),
        "run",
        "--bundle",
        str(bundle),
        "c1",
    ]
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                state = stockade("state", "c1")
                if '"running"' in state.stdout:
                    break
                time.sleep(0.05)
            yield process
        finally:
            if process.poll() is None:
                process.kill()  # the `run` command this test started
            process.wait(timeout=10)


def test_run_forwards_sigterm(stockade, make_bundle):
    # PID 1 of a PID namespace ignores a signal it has no handler for, so the
    # init traps this one.
    bundle = make_bundle("sh", "-c", "trap 'exit 3' TERM; sleep 30 & wait")
    with run_in_background(stockade, bundle) as process:
        time.sleep(0.3)  # let the shell install its trap
        process.send_signal(signal.SIGTERM)  # the `run` command this test started
        code = process.wait(timeout=10)

    assert code == 3
    assert not (stockade.root / "c1").exists(), "run left the state directory"


@pytest.mark.both_file_access
@pytest.mark.parametrize(
    "program, reason",
    [
        ("/no/such/cmd", "stat /no/such/cmd: no such file or directory"),
        ("/etc/passwd", "permission denied"),
    ],  # fmt: skip
)
def test_missing_program_worded_as_runc(stockade, make_bundle, root, program, reason):
    bundle = make_bundle(program)
    result = stockade("create", "--bundle", str(bundle), "c1")
    assert result.returncode != 0
    assert f'exec: "{program}": {reason}' in result.stderr
    assert not (root / "c1").exists()

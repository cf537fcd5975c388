"""create, start, state, kill, delete and run on real busybox containers."""

from __future__ import annotations

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
    bundle = make_bundle("sh", "-c", "kill -9 $$")
    assert stockade("run", "--bundle", str(bundle), "c1").returncode == 137


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


def test_run_forwards_sigterm(stockade, make_bundle):
    bundle = make_bundle("sleep", "30")
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
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            state = stockade("state", "c1")
            if '"running"' in state.stdout:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)  # the `run` command this test started
        code = process.wait(timeout=10)

    assert code == 128 + signal.SIGTERM
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

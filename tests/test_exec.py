"""`stockade exec`: more processes in a running container, on the same platform."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import join_pid_namespace
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


def test_exec_launcher_hidden(running):
    """The application's PID namespace has neither the sandbox process nor the launcher."""
    script = "grep -l stockade /proc/[0-9]*/comm; echo end"
    assert running.ok("exec", "c1", "sh", "-c", script).stdout == "end\n"


def test_exec_launcher_protected_when_shared(stockade, make_bundle, host_pid_namespace):
    """In a joined PID namespace, neither the sandbox nor the launcher takes signals."""
    bundle = make_bundle("sleep", "60", edit=join_pid_namespace(host_pid_namespace))
    stockade.ok("create", "--bundle", str(bundle), "c1")
    stockade.ok("start", "c1")
    script = (
        "for p in /proc/[0-9]*; do grep -q stockade $p/comm 2>/dev/null || continue; "
        "kill -9 ${p#/proc/} 2>/dev/null; echo ${p#/proc/}=$?; done"
    )
    results = stockade.ok("exec", "c1", "sh", "-c", script).stdout.split()
    still_works = stockade("exec", "c1", "true")
    stockade("delete", "--force", "c1")
    assert len(results) == 2
    assert all(result.endswith("=1") for result in results)
    assert still_works.returncode == 0


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


def container_processes(running):  # type: ignore[no-untyped-def]
    """Return (pid, state, command) of the container's processes, as `ps` lists them."""
    listing = running.ok("exec", "c1", "ps", "-o", "pid,stat,args").stdout
    rows = [line.split(None, 2) for line in listing.splitlines()[1:]]
    return [row for row in rows if not row[2].endswith("ps -o pid,stat,args")]


def assert_nothing_left(running, before):  # type: ignore[no-untyped-def]
    """Check that the container runs the same processes as BEFORE, and no zombie."""
    after = container_processes(running)
    assert [(pid, command) for pid, _, command in after] == [
        (pid, command) for pid, _, command in before
    ]
    assert not [row for row in after if row[1].startswith("Z")]


@pytest.mark.both_file_access
@pytest.mark.parametrize(
    ("cwd", "reason"),
    [("/nope", "no such file or directory"), ("/etc/passwd", "not a directory")],
)
def test_exec_bad_cwd(running, cwd, reason):
    before = container_processes(running)
    result = running("exec", "--cwd", cwd, "c1", "true")
    assert result.returncode == 1
    assert f'chdir to cwd ("{cwd}") set for exec failed: {reason}' in result.stderr
    assert "--cwd" in result.stderr
    assert 'exec: "true"' not in result.stderr
    assert_nothing_left(running, before)
    assert running("exec", "c1", "true").returncode == 0


def test_exec_relative_cwd(running):
    result = running("exec", "--cwd", "tmp", "c1", "true")
    assert result.returncode == 1
    assert "invalid --cwd 'tmp'" in result.stderr
    assert "absolute path" in result.stderr


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--user", "99999999999"], "invalid --user '99999999999'"),
        (["--user", "0:99999999999"], "invalid --user '0:99999999999'"),
        (["--user", "-5"], "invalid --user '-5'"),
        (["--user", "4294967295"], "invalid --user '4294967295'"),
        (["-g", "99999999999"], "invalid --additional-gids 99999999999"),
    ],
)
def test_exec_id_out_of_range(running, options, named):
    result = running("exec", *options, "c1", "true")
    assert result.returncode == 1
    assert named in result.stderr
    assert "from 0 to 4294967294" in result.stderr
    assert "Python" not in result.stderr
    assert "Traceback" not in result.stderr


def write_process(tmp_path, **fields):  # type: ignore[no-untyped-def]
    process = {"args": ["cat", "/proc/self/oom_score_adj"], "cwd": "/", **fields}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    return str(path)


@pytest.mark.parametrize("value", [5000, -1001, "high"])
def test_exec_oom_score_adj_invalid(running, tmp_path, value):
    result = running(
        "exec", "--process", write_process(tmp_path, oomScoreAdj=value), "c1"
    )
    assert result.returncode == 1
    assert f"process.oomScoreAdj {value!r} must be an integer" in result.stderr
    assert "from -1000 to 1000" in result.stderr


def test_exec_oom_score_adj_applied(running, tmp_path):
    result = running.ok(
        "exec", "--process", write_process(tmp_path, oomScoreAdj=500), "c1"
    )
    assert result.stdout == "500\n"


def has_capability(name: str) -> bool:
    from stockade.process import CAPABILITY_NUMBERS

    with open("/proc/self/status") as f:
        effective = next(line for line in f if line.startswith("CapEff:"))
    return bool(int(effective.split()[1], 16) & (1 << CAPABILITY_NUMBERS[name]))


def test_exec_oom_score_adj_not_permitted(running, tmp_path):
    if has_capability("CAP_SYS_RESOURCE"):
        pytest.skip("with CAP_SYS_RESOURCE the runtime may lower oomScoreAdj")
    before = container_processes(running)
    result = running(
        "exec", "--process", write_process(tmp_path, oomScoreAdj=-1000), "c1"
    )
    assert result.returncode == 1
    assert "set oomScoreAdj to -1000 failed: permission denied" in result.stderr
    assert "CAP_SYS_RESOURCE" in result.stderr
    assert 'exec: "cat"' not in result.stderr
    assert_nothing_left(running, before)


def test_exec_umask_out_of_range(running, tmp_path):
    user = {"uid": 0, "gid": 0, "umask": 1 << 40}
    result = running("exec", "--process", write_process(tmp_path, user=user), "c1")
    assert result.returncode == 1
    assert f"process.user.umask {1 << 40}" in result.stderr
    assert "Python" not in result.stderr

"""Stockade driven by real engines: podman (with conmon) and containerd.

The engines are installed and configured by the set-up scripts in
../shared/clients/ beside the repository, into a directory of this test
session's own, with no network. When a script is missing or fails, the tests
of that engine skip with the script's output.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import REPO, STOCKADE, processes_mentioning

CLIENTS = REPO.parent / "shared" / "clients"
IMAGE = "localhost/bbox:1"


def _set_up(script: str, directory: Path, *args: str) -> None:
    path = CLIENTS / script
    if not path.exists():
        pytest.skip(
            f"{path} not found: the engine set-up scripts are not beside the repository"
        )
    env = dict(os.environ, CLIENTS_DIR=str(directory))
    result = subprocess.run(["bash", str(path), *args], env=env, capture_output=True,
                            text=True, timeout=900, check=False)  # fmt: skip
    if result.returncode != 0:
        pytest.skip(
            f"{script} failed, so this engine cannot be tested: {result.stderr[-400:]}"
        )


class Engine:
    """Runs an engine command line through the set-up script's shell function."""

    def __init__(self, env_script: Path, function: str) -> None:
        self.env_script = env_script
        self.function = function

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120):  # type: ignore[no-untyped-def]
        command = (
            f"source {shlex.quote(str(self.env_script))}; {self.function} "
            + " ".join(shlex.quote(a) for a in args)
        )
        return subprocess.run(["bash", "-c", command], input=input, capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip


@pytest.fixture(scope="session")
def clients_dir():  # type: ignore[no-untyped-def]
    """A short directory: podman rejects a runroot path of 50 characters or more."""
    path = Path(tempfile.mkdtemp(prefix="stk-clients-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def podman(clients_dir: Path):  # type: ignore[no-untyped-def]
    _set_up("setup-podman.sh", clients_dir)
    engine = Engine(clients_dir / "podman" / "env.sh", "pm")
    yield lambda *args, **kwargs: engine("--runtime", STOCKADE, *args, **kwargs)
    engine("rm", "--all", "--force")


@pytest.fixture
def no_engine_leaks(clients_dir: Path):  # type: ignore[no-untyped-def]
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        sandboxes = [
            p for p in processes_mentioning(str(clients_dir)) if _is_sandbox(p)
        ]
        if not sandboxes:
            return
        time.sleep(0.1)
    pytest.fail(f"sandbox processes left running: {sandboxes}")


def _is_sandbox(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip().startswith("stockade")
    except OSError:
        return False


def test_podman_run_output(podman, no_engine_leaks):
    result = podman("run", "--rm", IMAGE, "echo", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"


def test_podman_init_is_pid_1(podman, no_engine_leaks):
    result = podman("run", "--rm", IMAGE, "sh", "-c", "echo $$; echo end")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\nend\n"


def test_podman_stop_reaches_init_handler(podman, no_engine_leaks):
    script = "trap 'exit 3' TERM; sleep 100 & wait"
    container = podman("run", "-d", IMAGE, "sh", "-c", script).stdout.strip()
    time.sleep(0.5)  # let the shell install its trap
    stopped = podman("stop", "-t", "30", container)
    code = podman("inspect", container, "--format", "{{.State.ExitCode}}")
    podman("rm", "-f", container)
    assert stopped.returncode == 0, stopped.stderr
    assert code.stdout.strip() == "3"


def test_podman_exit_code(podman, no_engine_leaks):
    result = podman("run", "--rm", IMAGE, "sh", "-c", "exit 5")
    assert result.returncode == 5


def test_podman_stdin(podman, no_engine_leaks):
    result = podman("run", "--rm", "-i", IMAGE, "cat", input="piped\n")
    assert result.stdout == "piped\n"


def test_podman_detach_exec_stop(podman, no_engine_leaks):
    started = podman("run", "-d", IMAGE, "sleep", "100")
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        executed = podman("exec", container, "sh", "-c", "echo in-exec; exit 3")
        assert executed.returncode == 3
        assert executed.stdout == "in-exec\n"
        piped = podman("exec", "-i", container, "cat", input="through exec\n")
        assert piped.stdout == "through exec\n"
        # sleep is PID 1 and has no SIGTERM handler, so the kernel ignores
        # SIGTERM and podman sends SIGKILL after the timeout, as with runc.
        stopped = podman("stop", "-t", "1", container)
        assert stopped.returncode == 0, stopped.stderr
        code = podman("inspect", container, "--format", "{{.State.ExitCode}}")
        assert code.stdout.strip() == "137"  # SIGKILL
    finally:
        removed = podman("rm", "-f", container)
    assert removed.returncode == 0, removed.stderr


def test_podman_with_the_gofer(podman, no_engine_leaks):
    """podman passes --runtime-flag options to every call but the cleanup's."""
    script = (
        "cat /etc/hostname >/dev/null && ls /bin/sh && echo x > /tmp/f && cat /tmp/f"
    )
    result = podman(
        "--runtime-flag", "file-access=gofer", "run", "--rm", IMAGE, "sh", "-c", script
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/bin/sh", "x"]
    started = podman(
        "--runtime-flag", "file-access=gofer", "run", "-d", IMAGE, "sleep", "100"
    )
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        script = "cat /proc/[0-9]*/comm | grep -qx sleep && echo found; ls /etc/hosts"
        executed = podman("exec", container, "sh", "-c", script)
        assert executed.returncode == 0, executed.stderr
        assert executed.stdout.split() == ["found", "/etc/hosts"]
    finally:
        removed = podman("rm", "-f", container)
    assert removed.returncode == 0, removed.stderr


def test_podman_kill(podman, no_engine_leaks):
    container = podman("run", "-d", IMAGE, "sleep", "100").stdout.strip()
    killed = podman("kill", container)
    waited = podman("wait", container)
    podman("rm", "-f", container)
    assert killed.returncode == 0, killed.stderr
    assert waited.stdout.strip() == "137"


# A shell loop that writes a growing counter to /out/n every 0.1 seconds.
COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /out/n; sleep 0.1; done"


def _read_counter(directory: Path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = (directory / "n").read_text() if (directory / "n").exists() else ""
        if text.strip():
            return int(text)
        time.sleep(0.05)
    raise AssertionError(f"the container wrote no counter to {directory}/n")


@contextlib.contextmanager
def podman_container(podman, name: str):  # type: ignore[no-untyped-def]
    """Yield NAME, and remove that podman container however the test ends."""
    try:
        yield name
    finally:
        podman("rm", "--force", name)


def test_podman_pause_unpause(podman, tmp_path, no_engine_leaks):
    with podman_container(podman, "eng-pause") as name:
        started = podman("run", "-d", "--name", name, "-v", f"{tmp_path}:/out",
                         IMAGE, "sh", "-c", COUNTER)  # fmt: skip
        assert started.returncode == 0, started.stderr
        _read_counter(tmp_path)

        paused = podman("pause", name)
        assert paused.returncode == 0, paused.stderr
        status = podman("inspect", name, "--format", "{{.State.Status}}")
        assert status.stdout.strip() == "paused"
        before = _read_counter(tmp_path)
        time.sleep(1)
        assert _read_counter(tmp_path) == before, "a paused container kept running"

        unpaused = podman("unpause", name)
        assert unpaused.returncode == 0, unpaused.stderr
        time.sleep(1)
        assert _read_counter(tmp_path) > before, "the container did not resume"
        status = podman("inspect", name, "--format", "{{.State.Status}}")
        assert status.stdout.strip() == "running"


def test_podman_top(podman, no_engine_leaks):
    with podman_container(podman, "eng-top") as name:
        started = podman("run", "-d", "--name", name, IMAGE, "sleep", "100")
        assert started.returncode == 0, started.stderr
        top = podman("top", name, "args")
        assert top.returncode == 0, top.stderr
        assert "sleep 100" in [line.strip() for line in top.stdout.splitlines()], (
            top.stdout
        )


def test_podman_exec_detach(podman, no_engine_leaks):
    with podman_container(podman, "eng-exec-detach") as name:
        started = podman("run", "-d", "--name", name, IMAGE, "sleep", "100")
        assert started.returncode == 0, started.stderr
        script = "echo detached > /tmp/mark; exec sleep 99"
        executed = podman("exec", "-d", name, "sh", "-c", script)
        assert executed.returncode == 0, executed.stderr

        deadline = time.monotonic() + 10
        mark = podman("exec", name, "cat", "/tmp/mark")
        while mark.stdout != "detached\n" and time.monotonic() < deadline:
            time.sleep(0.1)
            mark = podman("exec", name, "cat", "/tmp/mark")
        assert mark.stdout == "detached\n"
        top = podman("top", name, "args")
        assert "sleep 99" in [line.strip() for line in top.stdout.splitlines()], (
            top.stdout
        )


def test_podman_rm_force_running(podman, no_engine_leaks):
    with podman_container(podman, "eng-rm-force") as name:
        started = podman("run", "-d", "--name", name, IMAGE, "sleep", "100")
        assert started.returncode == 0, started.stderr
        removed = podman("rm", "--force", name)
        assert removed.returncode == 0, removed.stderr
        assert removed.stdout.strip() == name
        exists = podman("container", "exists", name)
        assert exists.returncode == 1, "the container is still there after rm -f"


def test_podman_missing_command(podman, no_engine_leaks):
    with podman_container(podman, "eng-missing") as name:
        result = podman("run", "--name", name, IMAGE, "eng-no-such-command")
    assert result.returncode == 127  # podman's code for a command not found
    assert "stockade" in result.stderr
    assert '"eng-no-such-command": executable file not found in $PATH' in (
        result.stderr
    )


@pytest.mark.parametrize("mode", ["direct", "gofer"])
def test_podman_read_only(podman, no_engine_leaks, mode):
    """With --read-only, podman requests tmpcopyup tmpfs mounts on /tmp and /run."""
    script = (
        "touch /etc/x 2>/dev/null || echo root-read-only; "
        "touch /tmp/x && echo tmp-writable; ls -d /run"
    )
    flags = ["--runtime-flag", f"file-access={mode}"]
    with podman_container(podman, f"eng-read-only-{mode}") as name:
        result = podman(
            *flags, "run", "--read-only", "--name", name, IMAGE, "sh", "-c", script
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["root-read-only", "tmp-writable", "/run"]


@pytest.fixture(scope="session")
def containerd(clients_dir: Path):  # type: ignore[no-untyped-def]
    _set_up("setup-containerd.sh", clients_dir, "start")
    engine = Engine(clients_dir / "containerd" / "env.sh", "cr")
    yield engine
    subprocess.run(["bash", str(CLIENTS / "setup-containerd.sh"), "stop"],
                   env=dict(os.environ, CLIENTS_DIR=str(clients_dir)),
                   capture_output=True, timeout=60, check=False)  # fmt: skip


def test_containerd_run(containerd, no_engine_leaks):
    result = containerd("run", "--rm", "--runc-binary", STOCKADE, IMAGE, "ctr-t1",
                        "sh", "-c", "echo from-containerd; exit 6")  # fmt: skip
    assert result.stdout == "from-containerd\n"
    assert result.returncode == 6


def _in_terminal(env_script: Path, command: str, input: str) -> tuple[int, str]:
    """Run an engine COMMAND in a terminal that script(1) provides; skip without it.

    Returns the exit status and the terminal's output without carriage returns.
    """
    if subprocess.run(["which", "script"], capture_output=True, check=False).returncode:
        pytest.skip("script(1) from bsdutils is needed to give the engine a terminal")
    inner = f"source {shlex.quote(str(env_script))}; {command}"
    result = subprocess.run(
        ["script", "-qec", f"bash -c {shlex.quote(inner)}", "/dev/null"],
        input=input, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout.replace("\r", "")


def test_podman_tty(podman, clients_dir, no_engine_leaks):
    returncode, output = _in_terminal(
        clients_dir / "podman" / "env.sh",
        f"pm --runtime {shlex.quote(STOCKADE)} run --rm -it {IMAGE} sh",
        "echo inside-$((2+3)); tty; exit 7\n",
    )
    assert returncode == 7
    assert "inside-5\n" in output
    assert "/dev/pts/0\n" in output


def test_podman_exec_tty(podman, clients_dir, no_engine_leaks):
    container = podman("run", "-d", IMAGE, "sleep", "100").stdout.strip()
    try:
        returncode, output = _in_terminal(
            clients_dir / "podman" / "env.sh",
            f"pm --runtime {shlex.quote(STOCKADE)} exec -it {container} sh",
            "echo exec-tty-$((4+4)); tty; exit 9\n",
        )
    finally:
        podman("rm", "-f", container)
    assert returncode == 9
    assert "exec-tty-8\n" in output
    assert "/dev/pts/" in output


@contextlib.contextmanager
def ctr_container(containerd, name: str):  # type: ignore[no-untyped-def]
    """Yield NAME, and remove its task, container and snapshot however the test ends."""
    try:
        yield name
    finally:
        containerd("task", "delete", "--force", name)
        containerd("container", "delete", name)  # the snapshot goes with it


def _ctr_status(containerd, name: str) -> str:  # type: ignore[no-untyped-def]
    for line in containerd("task", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == name:
            return fields[-1]
    return ""


def test_containerd_exit_codes(containerd, no_engine_leaks):
    # The init is PID 1 of its PID namespace, so the SIGKILL it sends itself is
    # ignored, as with runc.
    for script, expected in [("true", 0), ("exit 3", 3), ("kill -9 $$; exit 4", 4)]:
        with ctr_container(containerd, "eng-ctr-exit") as name:
            result = containerd("run", "--rm", "--runc-binary", STOCKADE, IMAGE, name,
                                "sh", "-c", script)  # fmt: skip
        assert result.returncode == expected, (script, result.stderr)


def test_containerd_detach_exec_kill(containerd, clients_dir, no_engine_leaks):
    fifo_dir = str(clients_dir / "containerd" / "fifo")
    with ctr_container(containerd, "eng-ctr-detach") as name:
        started = containerd("run", "-d", "--runc-binary", STOCKADE, IMAGE, name,
                             "sleep", "100")  # fmt: skip
        assert started.returncode == 0, started.stderr
        assert _ctr_status(containerd, name) == "RUNNING"

        executed = containerd("task", "exec", "--fifo-dir", fifo_dir, "--exec-id",
                              "eng-exec1", name, "sh", "-c", "echo in-exec; exit 4")  # fmt: skip
        assert executed.returncode == 4, executed.stderr
        assert executed.stdout == "in-exec\n"
        detached = containerd("task", "exec", "-d", "--fifo-dir", fifo_dir,
                              "--exec-id", "eng-exec2", name, "sleep", "99")  # fmt: skip
        assert detached.returncode == 0, detached.stderr

        listed = containerd("task", "ps", name)
        assert listed.returncode == 0, listed.stderr
        pids = [line.split()[0] for line in listed.stdout.splitlines()[1:]]
        assert len(pids) == 2, listed.stdout  # sleep 100 and sleep 99
        assert all(pid.isdigit() for pid in pids), listed.stdout

        # sleep is PID 1 and has no SIGTERM handler, so the kernel would ignore
        # the default SIGTERM, as with runc.
        killed = containerd("task", "kill", "--signal", "SIGKILL", name)
        assert killed.returncode == 0, killed.stderr
        deadline = time.monotonic() + 10
        while (
            _ctr_status(containerd, name) != "STOPPED" and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert _ctr_status(containerd, name) == "STOPPED"

        deleted = containerd("task", "delete", name)
        assert deleted.returncode == 0, deleted.stderr
        assert "exit code 137" in deleted.stderr  # SIGKILL
        assert _ctr_status(containerd, name) == ""


def test_containerd_pause_resume(containerd, tmp_path, no_engine_leaks):
    with ctr_container(containerd, "eng-ctr-pause") as name:
        started = containerd("run", "-d", "--runc-binary", STOCKADE, "--mount",
                             f"type=bind,src={tmp_path},dst=/out,options=rbind:rw",
                             IMAGE, name, "sh", "-c", COUNTER)  # fmt: skip
        assert started.returncode == 0, started.stderr
        _read_counter(tmp_path)

        paused = containerd("task", "pause", name)
        assert paused.returncode == 0, paused.stderr
        assert _ctr_status(containerd, name) == "PAUSED"
        before = _read_counter(tmp_path)
        time.sleep(1)
        assert _read_counter(tmp_path) == before, "a paused task kept running"

        resumed = containerd("task", "resume", name)
        assert resumed.returncode == 0, resumed.stderr
        assert _ctr_status(containerd, name) == "RUNNING"
        time.sleep(1)
        assert _read_counter(tmp_path) > before, "the task did not resume"


def test_containerd_tty(containerd, clients_dir, no_engine_leaks):
    """ctr run -t needs a terminal on its own stdin, which script(1) provides."""
    with ctr_container(containerd, "eng-ctr-tty") as name:
        returncode, output = _in_terminal(
            clients_dir / "containerd" / "env.sh",
            f"cr run --rm -t --runc-binary {shlex.quote(STOCKADE)} {IMAGE} {name} sh",
            "echo inside-$((2+3)); tty; exit 7\n",
        )
    assert returncode == 7
    assert "inside-5\n" in output
    assert "/dev/pts/0\n" in output


def test_podman_missing_absolute_command(podman, no_engine_leaks):
    result = podman("run", "--rm", "--name", "eng-no-such-path", IMAGE, "/no/such/cmd")
    assert result.returncode == 127
    assert "no such file or directory" in result.stderr

"""The runc-compatible commands: their output, exit codes and error messages."""

from __future__ import annotations

import datetime
import json
import os
import signal
import time

import pytest

STATE_KEYS = {
    "ociVersion",
    "id",
    "pid",
    "status",
    "bundle",
    "rootfs",
    "created",
    "owner",
}


def wait_for_status(stockade, container_id, status, timeout=5.0):
    """Poll `state` until the container has STATUS; return the last status seen."""
    deadline = time.monotonic() + timeout
    current = stockade.state(container_id)["status"]
    while current != status and time.monotonic() < deadline:
        time.sleep(0.05)
        current = stockade.state(container_id)["status"]
    return current


def alive(pid):
    """Return whether PID exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def wait_for_file(path, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.exists()


@pytest.fixture
def created(stockade, make_bundle):
    """Create container c1 (sleep 30, not started) and delete it after the test."""
    bundle = make_bundle("sleep", "30")
    stockade.ok("create", "--bundle", str(bundle), "c1")
    yield bundle
    stockade("delete", "--force", "c1")


@pytest.fixture
def running(stockade, created):
    stockade.ok("start", "c1")
    return created


# --- state ---------------------------------------------------------------------


def test_state_of_created_container(stockade, created):
    state = stockade.state("c1")

    assert set(state) >= STATE_KEYS, f"missing keys: {STATE_KEYS - set(state)}"
    assert state["ociVersion"] == "1.0.2-dev"
    assert state["id"] == "c1"
    assert state["status"] == "created"
    assert state["pid"] > 0
    assert os.path.exists(f"/proc/{state['pid']}"), (
        "state names a pid that does not exist"
    )
    assert state["bundle"] == str(created)
    assert state["rootfs"] == str(created / "rootfs")
    assert isinstance(state["owner"], str)
    created_at = datetime.datetime.fromisoformat(state["created"])
    age = datetime.datetime.now(datetime.UTC) - created_at
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=1), (
        f"created {age} ago"
    )


def test_state_of_running_container(stockade, running):
    state = stockade.state("c1")

    assert state["status"] == "running"
    assert state["pid"] > 0


def test_state_of_stopped_container(stockade, make_bundle):
    bundle = make_bundle("true")
    stockade.ok("create", "--bundle", str(bundle), "c1")
    stockade.ok("start", "c1")
    status = wait_for_status(stockade, "c1", "stopped")
    state = stockade.state("c1")
    stockade.ok("delete", "c1")

    assert status == "stopped"
    assert state["pid"] == 0, "a stopped container must report pid 0"
    assert set(state) >= STATE_KEYS, f"missing keys: {STATE_KEYS - set(state)}"


def test_state_of_unknown_container(stockade):
    result = stockade("state", "nosuch")

    assert result.returncode == 1
    assert "container nosuch does not exist" in result.stderr


# --- list ----------------------------------------------------------------------


def test_list_table(stockade, created):
    lines = stockade.ok("list").stdout.splitlines()

    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert len(lines) == 2, f"expected a header and one row: {lines}"
    row = lines[1].split()
    assert row[0] == "c1"
    assert row[2] == "created"
    assert row[3] == str(created)


def test_list_json(stockade, created):
    documents = json.loads(stockade.ok("list", "--format", "json").stdout)

    assert [d["id"] for d in documents] == ["c1"]
    assert documents[0]["status"] == "created"
    assert set(documents[0]) >= STATE_KEYS


def test_list_quiet(stockade, make_bundle):
    for container_id in ("c1", "c2"):
        stockade.ok("create", "--bundle", str(make_bundle("true")), container_id)
    output = stockade.ok("list", "--quiet").stdout
    for container_id in ("c1", "c2"):
        stockade.ok("delete", container_id)

    assert output == "c1\nc2\n"


def test_list_without_root(stockade):
    result = stockade.ok("list", "--format", "json")

    assert json.loads(result.stdout) == []


# --- kill ----------------------------------------------------------------------


# These tests check signal parsing, so they use a created container, whose
# sandbox replies to `kill` before it exits.
@pytest.mark.parametrize("signal_name", ["TERM", "SIGTERM", "term", "15"])
def test_kill_signal_spellings(stockade, created, signal_name):
    stockade.ok("kill", "c1", signal_name)
    result = stockade.ok("wait", "c1")

    assert json.loads(result.stdout)["exitStatus"] == 128 + 15


def test_kill_default_is_sigterm(stockade, created):
    stockade.ok("kill", "c1")
    result = stockade.ok("wait", "c1")

    assert json.loads(result.stdout)["exitStatus"] == 128 + 15


# NOTE: not strict, because the bug is a race that depends on scheduling. Shell
# loops on the development host saw from 0 of 30 to 5 of 20 kills fail, varying
# with the tracer's speed, so all ten attempts may pass.
def test_kill_running_container_succeeds(stockade, make_bundle):
    bundle = make_bundle("sleep", "30")
    for attempt in range(10):
        stockade.ok("create", "--bundle", str(bundle), "c1")
        stockade.ok("start", "c1")
        result = stockade("kill", "c1", "TERM")
        stockade.ok("delete", "--force", "c1")
        assert result.returncode == 0, (
            f"kill failed on attempt {attempt + 1}: {result.stderr}"
        )


@pytest.mark.parametrize("signal_name", ["FOO", "SIGFOO", "0", "65", "-9"])
def test_kill_invalid_signal(stockade, running, signal_name):
    result = stockade("kill", "c1", "--", signal_name)

    assert result.returncode == 1
    assert f"invalid signal {signal_name!r}" in result.stderr
    assert stockade.state("c1")["status"] == "running", (
        "an invalid signal changed the container"
    )


def test_kill_all_reaches_children(stockade, make_bundle):
    # The init ignores SIGTERM but its child does not. Only --all ends the child,
    # and then the init writes the marker.
    script = "sleep 30 & trap '' TERM; wait; echo done > /tmp/marker; sleep 30"
    bundle = make_bundle("sh", "-c", script)
    marker = bundle / "rootfs" / "tmp" / "marker"
    stockade.ok("create", "--bundle", str(bundle), "c1")
    stockade.ok("start", "c1")
    time.sleep(0.2)  # let the init install its trap

    stockade.ok("kill", "--all", "c1", "TERM")
    reached = wait_for_file(marker)
    stockade.ok("delete", "--force", "c1")

    assert reached, "kill --all did not reach the init's child"


def test_kill_created_container_stops_it(stockade, created):
    stockade.ok("kill", "c1", "TERM")
    status = wait_for_status(stockade, "c1", "stopped")
    result = stockade.ok("wait", "c1")

    assert status == "stopped"
    assert json.loads(result.stdout)["exitStatus"] == 128 + 15


def test_kill_stopped_container(stockade, make_bundle):
    stockade.ok("create", "--bundle", str(make_bundle("true")), "c1")
    stockade.ok("start", "c1")
    wait_for_status(stockade, "c1", "stopped")

    result = stockade("kill", "c1", "KILL")

    assert result.returncode == 1
    assert "container not running" in result.stderr
    stockade.ok("delete", "c1")


def test_kill_unknown_container(stockade):
    result = stockade("kill", "nosuch", "KILL")

    assert result.returncode == 1
    assert "container nosuch does not exist" in result.stderr


# --- delete --------------------------------------------------------------------


def test_delete_created_container(stockade, make_bundle):
    stockade.ok("create", "--bundle", str(make_bundle("sleep", "30")), "c1")
    pid = stockade.state("c1")["pid"]

    stockade.ok("delete", "c1")

    assert not (stockade.root / "c1").exists(), "state directory left after delete"
    assert not alive(pid), f"sandbox process {pid} still runs"
    assert stockade("state", "c1").returncode == 1


def test_delete_running_needs_force(stockade, running):
    result = stockade("delete", "c1")

    assert result.returncode == 1
    assert "--force" in result.stderr, (
        f"message does not mention --force: {result.stderr!r}"
    )
    assert stockade.state("c1")["status"] == "running"


def test_delete_force_running_container(stockade, running):
    stockade.ok("delete", "--force", "c1")

    assert not (stockade.root / "c1").exists(), (
        "state directory left after delete --force"
    )


def test_delete_then_reuse_id(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "exit 4")
    stockade.ok("create", "--bundle", str(bundle), "c1")
    stockade.ok("delete", "c1")

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.returncode == 4, f"run of a reused id failed: {result.stderr}"


def test_sandbox_killed_outside_is_stopped(stockade, running):
    pid = stockade.state("c1")["pid"]
    os.kill(pid, signal.SIGKILL)  # the sandbox process of this test's container

    status = wait_for_status(stockade, "c1", "stopped")
    delete = stockade("delete", "c1")

    assert status == "stopped"
    assert delete.returncode == 0, f"delete failed: {delete.stderr}"
    assert not (stockade.root / "c1").exists(), "state directory left after delete"


def test_delete_force_unknown_id(stockade):
    result = stockade("delete", "--force", "nosuch")

    assert result.returncode == 0, (
        f"delete --force of an unknown id failed: {result.stderr}"
    )


def test_delete_unknown_id(stockade):
    result = stockade("delete", "nosuch")

    assert result.returncode == 1
    assert "container nosuch does not exist" in result.stderr


# --- start, wait ---------------------------------------------------------------


def test_start_twice_fails(stockade, running):
    result = stockade("start", "c1")

    assert result.returncode == 1
    assert "cannot start container c1" in result.stderr
    assert stockade.state("c1")["status"] == "running"


def test_start_stopped_container(stockade, make_bundle):
    stockade.ok("create", "--bundle", str(make_bundle("true")), "c1")
    stockade.ok("start", "c1")
    wait_for_status(stockade, "c1", "stopped")

    result = stockade("start", "c1")
    stockade.ok("delete", "c1")

    assert result.returncode == 1
    assert "its status is stopped" in result.stderr


def test_start_unknown_container(stockade):
    result = stockade("start", "nosuch")

    assert result.returncode == 1
    assert "container nosuch does not exist" in result.stderr


def test_wait_prints_exit_status(stockade, make_bundle):
    stockade.ok("create", "--bundle", str(make_bundle("sh", "-c", "exit 5")), "c1")
    stockade.ok("start", "c1")

    result = stockade.ok("wait", "c1")
    stockade.ok("delete", "c1")

    assert json.loads(result.stdout) == {"id": "c1", "exitStatus": 5}


# --- spec, version, features ---------------------------------------------------


def test_spec_writes_config(stockade, tmp_path):
    stockade.ok("spec", "--bundle", str(tmp_path), root=False)

    config = json.loads((tmp_path / "config.json").read_text())
    assert config["ociVersion"] == "1.0.2-dev"
    assert config["process"]["args"] == ["sh"]
    assert config["root"] == {"path": "rootfs", "readonly": True}


def test_spec_refuses_overwrite(stockade, tmp_path):
    (tmp_path / "config.json").write_text("mine")

    result = stockade("spec", "--bundle", str(tmp_path), root=False)

    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert (tmp_path / "config.json").read_text() == "mine"


@pytest.mark.parametrize(
    "args", [("version",), ("--version",)], ids=["command", "flag"]
)
def test_version_output(stockade, args):
    lines = stockade.ok(*args, root=False).stdout.splitlines()

    assert lines[0].startswith("stockade version "), lines
    assert lines[1] == "spec: 1.0.2-dev"


def test_features_is_json(stockade):
    features = json.loads(stockade.ok("features", root=False).stdout)

    assert features["ociVersionMax"] == "1.0.2-dev"
    assert "pid" in features["linux"]["namespaces"]
    assert "bind" in features["mountOptions"]


# --- ps, exec ------------------------------------------------------------------


def test_ps_json_lists_application(stockade, running):
    deadline = time.monotonic() + 5
    pids = json.loads(stockade.ok("ps", "--format", "json", "c1").stdout)
    while not pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = json.loads(stockade.ok("ps", "--format", "json", "c1").stdout)

    assert len(pids) == 1, f"expected the one sleep process: {pids}"
    with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"30"]


def test_ps_passes_options_to_host_ps(stockade, running):
    deadline = time.monotonic() + 5
    while not json.loads(stockade.ok("ps", "--format", "json", "c1").stdout):
        assert time.monotonic() < deadline, "the application never appeared"
        time.sleep(0.05)
    lines = stockade.ok("ps", "c1", "-ef").stdout.splitlines()

    assert lines[0].split()[:2] == ["UID", "PID"]
    assert len(lines) == 2, lines
    assert lines[1].endswith("sleep 30")


def test_ps_options_with_json_rejected(stockade, running):
    result = stockade("ps", "--format", "json", "c1", "-ef")

    assert result.returncode == 1
    assert "ps options -ef need --format table" in result.stderr


def test_ps_stopped_container(stockade, make_bundle):
    stockade.ok("create", "--bundle", str(make_bundle("true")), "c1")
    stockade.ok("start", "c1")
    wait_for_status(stockade, "c1", "stopped")

    result = stockade("ps", "c1")
    stockade.ok("delete", "c1")

    assert result.returncode == 1
    assert "container not running" in result.stderr


def test_exec_runs_in_container(stockade, running):
    result = stockade("exec", "c1", "true")

    assert result.returncode == 0


# --- failed create -------------------------------------------------------------


def test_missing_executable_fails_fast(stockade, make_bundle, tmp_path):
    bundle = make_bundle("nosuchprogram")
    pid_file = tmp_path / "pid"
    started = time.monotonic()

    result = stockade(
        "create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1"
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    assert elapsed < 10, f"create took {elapsed:.1f}s to fail"
    assert '"nosuchprogram"' in result.stderr, (
        f"message does not name the executable: {result.stderr!r}"
    )
    assert not pid_file.exists(), "pid file written by a failed create"
    assert not (stockade.root / "c1").exists(), (
        "state directory left by a failed create"
    )
    assert stockade("state", "c1").returncode == 1


def test_missing_absolute_executable(stockade, make_bundle):
    result = stockade("run", "--bundle", str(make_bundle("/bin/nosuchprogram")), "c1")

    assert result.returncode == 1
    assert '"/bin/nosuchprogram"' in result.stderr, (
        f"message does not name the executable: {result.stderr!r}"
    )
    assert not (stockade.root / "c1").exists(), "state directory left by a failed run"


def test_pid_file_has_pid(stockade, make_bundle, tmp_path):
    pid_file = tmp_path / "pid"
    stockade.ok(
        "create",
        "--bundle",
        str(make_bundle("true")),
        "--pid-file",
        str(pid_file),
        "c1",
    )
    content = pid_file.read_text()
    state = stockade.state("c1")
    stockade.ok("delete", "c1")

    assert content == str(state["pid"]), f"pid file contains {content!r}"


def test_pid_file_unwritable_cleans_up(stockade, make_bundle, tmp_path):
    pid_file = tmp_path / "missing" / "pid"
    bundle = make_bundle("sleep", "30")

    result = stockade(
        "create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1"
    )

    assert result.returncode == 1
    assert not (stockade.root / "c1").exists(), (
        "state directory left by a failed create"
    )
    assert stockade("state", "c1").returncode == 1


def test_pid_file_error_names_path(stockade, make_bundle, tmp_path):
    pid_file = tmp_path / "missing" / "pid"
    bundle = make_bundle("sleep", "30")

    result = stockade(
        "create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1"
    )

    assert str(pid_file) in result.stderr, (
        f"message does not name the pid file: {result.stderr!r}"
    )


def test_log_json_on_failure(stockade, tmp_path):
    log = tmp_path / "log.json"

    result = stockade("--log", str(log), "--log-format", "json", "delete", "nosuch")

    assert result.returncode == 1
    lines = log.read_text().splitlines()
    assert lines, "nothing written to the --log file"
    entry = json.loads(lines[-1])
    assert entry["level"] == "error"
    assert "container nosuch does not exist" in entry["msg"]
    assert datetime.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%SZ")


def test_log_json_on_failed_create(stockade, make_bundle, tmp_path):
    log = tmp_path / "log.json"
    bundle = make_bundle("nosuchprogram")

    result = stockade(
        "--log",
        str(log),
        "--log-format",
        "json",
        "create",
        "--bundle",
        str(bundle),
        "c1",
    )

    assert result.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error"
    assert "nosuchprogram" in entry["msg"]
    assert set(entry) >= {"level", "msg", "time"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mounts", {}, "mounts must be a list of JSON objects"),
        ("root", "rootfs", "root must be a JSON object"),
        ("hostname", 5, "hostname must be a string"),
        ("annotations", [], "annotations must be a JSON object"),
        (
            "linux.readonlyPaths",
            "/proc",
            "linux.readonlyPaths must be a list of strings",
        ),
        (
            "linux.namespaces",
            ["pid"],
            "linux.namespaces must be a list of JSON objects",
        ),
        ("process.terminal", True, "process.terminal is true"),
    ],
)
def test_config_json_wrong_types(stockade, make_bundle, field, value, message):
    def edit(config):  # type: ignore[no-untyped-def]
        *parents, last = field.split(".")
        target = config
        for part in parents:
            target = target[part]
        target[last] = value

    result = stockade("run", "--bundle", str(make_bundle("true", edit=edit)), "c1")
    assert result.returncode == 1
    assert message in result.stderr
    assert not (stockade.root / "c1").exists()


def test_sysctl_applied(stockade, make_bundle):
    def add_sysctl(config):  # type: ignore[no-untyped-def]
        config["linux"]["sysctl"] = {
            "net.ipv4.ip_forward": "1",
            "kernel.shmmni": "1234",
        }

    bundle = make_bundle("cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni",
                         edit=add_sysctl)  # fmt: skip
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    assert result.stdout.split() == ["1", "1234"]


def test_host_sysctl_rejected(stockade, make_bundle):
    def add_sysctl(config):  # type: ignore[no-untyped-def]
        config["linux"]["sysctl"] = {"vm.swappiness": "10"}

    result = stockade(
        "run", "--bundle", str(make_bundle("true", edit=add_sysctl)), "c1"
    )
    assert result.returncode == 1
    assert "'vm.swappiness' is not namespaced" in result.stderr


def test_oom_score_adj(stockade, make_bundle):
    def adjust(config):  # type: ignore[no-untyped-def]
        config["process"]["oomScoreAdj"] = 500

    bundle = make_bundle("cat", "/proc/self/oom_score_adj", edit=adjust)
    assert stockade.ok("run", "--bundle", str(bundle), "c1").stdout.strip() == "500"


def test_rlimit_error_names_limit(stockade, make_bundle):
    def too_high(config):  # type: ignore[no-untyped-def]
        config["process"]["rlimits"] = [
            {"type": "RLIMIT_NOFILE", "soft": 1 << 30, "hard": 1 << 30}
        ]

    result = stockade("run", "--bundle", str(make_bundle("true", edit=too_high)), "c1")
    assert result.returncode == 1
    assert "RLIMIT_NOFILE" in result.stderr


def test_sysctl_path_tricks_rejected(stockade, make_bundle):
    for key in ("net.ipv4.conf.all/../../../../vm/swappiness", "net.ipv4..ip_forward"):

        def add_sysctl(config, key=key):  # type: ignore[no-untyped-def]
            config["linux"]["sysctl"] = {key: "1"}

        result = stockade(
            "run", "--bundle", str(make_bundle("true", edit=add_sysctl)), "c1"
        )
        assert result.returncode == 1, key
        assert "invalid linux.sysctl key" in result.stderr, key

"""The container from inside: processes, network, devices, mounts and process settings."""

from __future__ import annotations

import os

import pytest

# Files in the default maskedPaths. Each exists only on some kernels.
MASKED_FILES = ["/proc/kcore", "/proc/keys", "/proc/timer_list"]


def run(stockade, make_bundle, script, edit=None, args=(), input=None):
    """Run SCRIPT with sh in a new container and return the result of `run`."""
    bundle = make_bundle("sh", "-c", script, edit=edit)
    return stockade(*args, "run", "--bundle", str(bundle), "c1", input=input)


def run_ok(stockade, make_bundle, script, **kwargs):
    result = run(stockade, make_bundle, script, **kwargs)
    assert result.returncode == 0, (
        f"{script!r} exited {result.returncode}: {result.stderr}"
    )
    return result.stdout


def interfaces(net_dev: str) -> set[str]:
    return {
        line.split(":", 1)[0].strip()
        for line in net_dev.splitlines()[2:]
        if ":" in line
    }


# --- identity and processes ----------------------------------------------------


def test_hostname_from_spec(stockade, make_bundle):
    def edit(config):
        config["hostname"] = "box-one"

    assert run_ok(stockade, make_bundle, "hostname", edit=edit) == "box-one\n"


def test_ps_shows_only_container(stockade, make_bundle):
    output = run_ok(stockade, make_bundle, "ps -o pid,comm")
    rows = [line.split() for line in output.splitlines()[1:]]
    pids = [int(row[0]) for row in rows]

    assert len(rows) <= 2, f"more processes than sh and ps:\n{output}"
    assert max(pids) < 100, f"a host pid is visible:\n{output}"
    assert "pytest" not in output


def test_pid_1_is_init(stockade, make_bundle):
    output = run_ok(stockade, make_bundle, "cat /proc/1/comm; echo end")

    assert output == "sh\nend\n"


def test_proc_lists_few_pids(stockade, make_bundle):
    output = run_ok(stockade, make_bundle, "ls /proc")
    pids = [name for name in output.split() if name.isdigit()]

    assert "1" in pids
    assert len(pids) <= 2, f"/proc lists processes outside the container: {pids}"


# --- network -------------------------------------------------------------------


def test_network_none_has_only_lo(stockade, make_bundle):
    output = run_ok(stockade, make_bundle, "cat /proc/net/dev")

    assert interfaces(output) == {"lo"}


def test_network_none_lo_is_up(stockade, make_bundle):
    output = run_ok(stockade, make_bundle, "ip link show lo")
    flags = output.split("<", 1)[1].split(">", 1)[0].split(",")

    assert "UP" in flags, f"lo is not up: {output}"


def test_network_host_lists_host_interfaces(stockade, make_bundle):
    with open("/proc/net/dev") as f:
        host = interfaces(f.read())

    output = run_ok(
        stockade, make_bundle, "cat /proc/net/dev", args=("--network", "host")
    )

    assert interfaces(output) == host


# --- devices and pseudo file systems -------------------------------------------


@pytest.mark.parametrize(
    "script, expected",
    [
        ("echo gone > /dev/null && wc -c < /dev/null", "0\n"),
        ("head -c 4 /dev/zero | od -An -tx1", " 00 00 00 00\n"),
        ("head -c 16 /dev/urandom | wc -c", "16\n"),
        ("test -d /dev/pts && echo yes", "yes\n"),
    ],
    ids=["null", "zero", "urandom", "pts"],
)
def test_device_works(stockade, make_bundle, script, expected):
    assert run_ok(stockade, make_bundle, script) == expected


def test_proc_is_mounted(stockade, make_bundle):
    output = run_ok(stockade, make_bundle, "grep ' /proc ' /proc/self/mountinfo")

    assert " - proc " in output, f"/proc is not a proc mount: {output!r}"


@pytest.mark.parametrize("path", MASKED_FILES)
def test_masked_file_reads_empty(stockade, make_bundle, path):
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this kernel")

    output = run_ok(stockade, make_bundle, f"wc -c < {path}")

    assert output == "0\n", f"{path} is not masked"


def test_masked_dir_is_empty(stockade, make_bundle):
    if not os.listdir("/sys/firmware"):
        pytest.skip("/sys/firmware is empty on the host")

    output = run_ok(stockade, make_bundle, "ls -A /sys/firmware")

    assert output == ""


def test_readonly_path_rejects_write(stockade, make_bundle):
    # kernel.hostname is per UTS namespace, so a write that got through would not
    # reach the host.
    result = run(stockade, make_bundle, "echo other > /proc/sys/kernel/hostname")

    assert result.returncode != 0, "/proc/sys is writable"
    assert "Read-only file system" in result.stderr


# --- root file system ----------------------------------------------------------


def readonly_root_with_tmp(config):
    config["root"]["readonly"] = True
    config["mounts"].append(
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777"],
        }
    )


def test_readonly_root_rejects_write(stockade, make_bundle):
    result = run(stockade, make_bundle, "touch /x", edit=readonly_root_with_tmp)

    assert result.returncode != 0, "touch /x succeeded on a read-only root"
    assert "Read-only file system" in result.stderr


def test_readonly_root_tmpfs_writable(stockade, make_bundle):
    output = run_ok(
        stockade, make_bundle, "touch /tmp/y && ls /tmp", edit=readonly_root_with_tmp
    )

    assert output == "y\n"


def test_readonly_root_leaves_bundle(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "touch /tmp/y", edit=readonly_root_with_tmp)

    stockade.ok("run", "--bundle", str(bundle), "c1")

    assert os.listdir(bundle / "rootfs" / "tmp") == [], (
        "the tmpfs write reached the bundle"
    )


def bind_mount(destination, source, *options):
    """Return a config edit that adds a bind mount of SOURCE at DESTINATION."""

    def edit(config):
        config["mounts"].append(
            {
                "destination": destination,
                "type": "bind",
                "source": str(source),
                "options": ["bind", *options],
            }
        )

    return edit


def test_file_bind_mount(stockade, make_bundle, tmp_path):
    source = tmp_path / "greeting"
    source.write_text("hello\n")
    edit = bind_mount("/etc/greeting", source)

    assert run_ok(stockade, make_bundle, "cat /etc/greeting", edit=edit) == "hello\n"


def test_dir_bind_mount(stockade, make_bundle, tmp_path):
    source = tmp_path / "shared"
    source.mkdir()
    (source / "greeting").write_text("hello\n")
    edit = bind_mount("/mnt/shared", source)

    assert (
        run_ok(stockade, make_bundle, "cat /mnt/shared/greeting", edit=edit)
        == "hello\n"
    )


def test_readonly_bind_mount(stockade, make_bundle, tmp_path):
    source = tmp_path / "shared"
    source.mkdir()
    (source / "greeting").write_text("hello\n")
    edit = bind_mount("/mnt/shared", source, "ro")

    result = run(
        stockade,
        make_bundle,
        "cat /mnt/shared/greeting; touch /mnt/shared/new",
        edit=edit,
    )

    assert result.stdout == "hello\n", (
        f"the bind mount is not readable: {result.stderr}"
    )
    assert "Read-only file system" in result.stderr, f"unexpected result: {result}"
    assert not (source / "new").exists(), (
        "the write went through a read-only bind mount"
    )


def test_readonly_root_file_bind(stockade, make_bundle, tmp_path):
    source = tmp_path / "greeting"
    source.write_text("hello\n")
    add_bind = bind_mount("/etc/greeting", source)

    def edit(config):
        config["root"]["readonly"] = True
        add_bind(config)

    assert run_ok(stockade, make_bundle, "cat /etc/greeting", edit=edit) == "hello\n"


# --- process settings ----------------------------------------------------------


def test_user_and_group_ids(stockade, make_bundle):
    def edit(config):
        config["process"]["user"] = {"uid": 1000, "gid": 1000}

    assert run_ok(stockade, make_bundle, "id -u; id -g", edit=edit) == "1000\n1000\n"


def test_env_is_passed(stockade, make_bundle):
    def edit(config):
        config["process"]["env"] = ["PATH=/bin", "GREETING=hello world", "EMPTY="]

    output = run_ok(stockade, make_bundle, 'echo "$GREETING|$EMPTY|$PATH"', edit=edit)

    assert output == "hello world||/bin\n"


def test_env_has_nothing_else(stockade, make_bundle):
    def edit(config):
        config["process"]["env"] = ["PATH=/bin", "ONLY=1"]

    output = run_ok(stockade, make_bundle, "env", edit=edit)
    names = {line.split("=", 1)[0] for line in output.splitlines()}

    assert "PYTEST_CURRENT_TEST" not in names, "the host environment leaked in"
    assert {"PATH", "ONLY"} <= names


def test_cwd_is_honoured(stockade, make_bundle):
    def edit(config):
        config["process"]["cwd"] = "/root"

    assert run_ok(stockade, make_bundle, "pwd", edit=edit) == "/root\n"


def test_rlimit_nofile(stockade, make_bundle):
    def edit(config):
        config["process"]["rlimits"] = [
            {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}
        ]

    assert (
        run_ok(stockade, make_bundle, "ulimit -n; ulimit -Hn", edit=edit)
        == "123\n456\n"
    )


def test_stdin_reaches_application(stockade, make_bundle):
    bundle = make_bundle("cat")

    result = stockade(
        "run", "--bundle", str(bundle), "c1", input="line one\nline two\n"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "line one\nline two\n"


# --- state directory paths -----------------------------------------------------


def test_long_root_path(stockade, make_bundle):
    # <root>/<id>/control.sock is longer than the 108 bytes of sun_path. The root
    # starts with the fixture's root path, so the leak check still finds its processes.
    long_root = stockade.root.with_name(stockade.root.name + "-" + "r" * 100)
    container_id = "c" * 20
    assert len(f"{long_root}/{container_id}/control.sock") > 108
    bundle = make_bundle("sleep", "30")
    options = ("--root", str(long_root))

    create = stockade(
        *options, "create", "--bundle", str(bundle), container_id, root=False
    )
    start = stockade(*options, "start", container_id, root=False)
    # SIGWINCH leaves sleep running, so the sandbox is still there to reply.
    kill = stockade(*options, "kill", container_id, "WINCH", root=False)
    state = stockade(*options, "state", container_id, root=False)
    delete = stockade(*options, "delete", "--force", container_id, root=False)

    assert create.returncode == 0, f"create failed: {create.stderr}"
    assert start.returncode == 0, f"start failed: {start.stderr}"
    assert kill.returncode == 0, f"kill failed: {kill.stderr}"
    assert '"status": "running"' in state.stdout, (
        f"unexpected state: {state.stdout}{state.stderr}"
    )
    assert delete.returncode == 0, f"delete failed: {delete.stderr}"
    assert os.listdir(long_root) == [], "state left under the long root"

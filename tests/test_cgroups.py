"""linux.resources through cgroups, pause and resume, and events --stats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from stockade import cgroups


def limits(memory=None, pids=None, path=None):  # type: ignore[no-untyped-def]
    def edit(config):  # type: ignore[no-untyped-def]
        resources = {}
        if memory:
            resources["memory"] = {"limit": memory}
        if pids:
            resources["pids"] = {"limit": pids}
        config["linux"]["resources"] = resources
        if path:
            config["linux"]["cgroupsPath"] = path

    return edit


def read(directory: str, name: str) -> str:
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()


@pytest.fixture
def directories():  # type: ignore[no-untyped-def]
    if not cgroups.directories("stockade/probe"):
        pytest.skip("this host has no cgroup hierarchy under /sys/fs/cgroup")
    return cgroups.directories


def test_limits_written(stockade, make_bundle, directories):
    bundle = make_bundle("sleep", "30", edit=limits(memory=64 << 20, pids=32))
    stockade.ok("create", "--bundle", str(bundle), "c1")
    dirs = directories("stockade/c1")
    if "" in dirs:
        memory = open(os.path.join(dirs[""], "memory.max")).read().strip()
        pids = open(os.path.join(dirs[""], "pids.max")).read().strip()
    else:
        memory = (
            open(os.path.join(dirs["memory"], "memory.limit_in_bytes")).read().strip()
        )
        pids = open(os.path.join(dirs["pids"], "pids.max")).read().strip()
    stockade.ok("delete", "--force", "c1")
    assert memory == str(64 << 20)
    assert pids == "32"
    assert not any(os.path.exists(d) for d in dirs.values())


def test_pids_limit_enforced(stockade, make_bundle, directories):
    script = "for i in $(seq 40); do sleep 5 & done; echo all-started"
    bundle = make_bundle("sh", "-c", script, edit=limits(pids=16))
    result = stockade("run", "--bundle", str(bundle), "c1")
    assert "all-started" not in result.stdout
    assert "can't fork" in result.stderr


def test_pause_resume(stockade, make_bundle, directories):
    bundle = make_bundle("sleep", "30")
    stockade.ok("create", "--bundle", str(bundle), "c1")
    stockade.ok("start", "c1")
    stockade.ok("pause", "c1")
    paused = stockade.state("c1")["status"]
    again = stockade("pause", "c1")
    stockade.ok("resume", "c1")
    resumed = stockade.state("c1")["status"]
    stockade.ok("delete", "--force", "c1")
    assert paused == "paused"
    assert again.returncode == 1
    assert resumed == "running"


def test_kill_paused_container(stockade, make_bundle, directories):
    stockade.ok("create", "--bundle", str(make_bundle("sleep", "30")), "c1")
    stockade.ok("start", "c1")
    stockade.ok("pause", "c1")
    term = stockade("kill", "c1", "TERM")
    stockade.ok("kill", "c1", "KILL")
    stockade.ok("wait", "c1", timeout=10)
    stockade.ok("delete", "c1")
    assert term.returncode == 1
    assert "resume it first" in term.stderr


def test_delete_force_paused(stockade, make_bundle, directories):
    stockade.ok("create", "--bundle", str(make_bundle("sleep", "30")), "c1")
    stockade.ok("start", "c1")
    stockade.ok("pause", "c1")
    stockade.ok("delete", "--force", "c1", timeout=20)
    assert not (stockade.root / "c1").exists()


def test_events_stats(stockade, make_bundle, directories):
    stockade.ok("create", "--bundle", str(make_bundle("sleep", "30")), "c1")
    stockade.ok("start", "c1")
    event = json.loads(stockade.ok("events", "--stats", "c1").stdout)
    stockade.ok("delete", "--force", "c1")
    assert event["type"] == "stats"
    assert event["data"]["memory"]["usage"]["usage"] > 0
    assert event["data"]["pids"]["current"] >= 1
    assert event["data"]["cpu"]["usage"]["total"] > 0


def test_cgroups_path_from_spec(stockade, make_bundle, directories):
    bundle = make_bundle(
        "sleep", "30", edit=limits(pids=50, path="/stockade-test/custom")
    )
    stockade.ok("create", "--bundle", str(bundle), "c1")
    dirs = directories("stockade-test/custom")
    present = all(os.path.isdir(d) for d in dirs.values())
    stockade.ok("delete", "--force", "c1")
    for path in dirs.values():
        os.rmdir(os.path.dirname(path))  # the parent this test named
    assert present


# /dev/fuse opens without any capability, so the device cgroup alone decides.
FUSE = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}
DENY_ALL = {"allow": False, "access": "rwm"}
OPEN_DEVICES = (
    "true < /dev/fuse && echo fuse-read; "
    "true > /dev/fuse && echo fuse-write; "
    "echo x > /dev/null && echo null-write; "
    "head -c 4 /dev/zero | wc -c"
)


def device_rules(*rules):  # type: ignore[no-untyped-def]
    def edit(config):  # type: ignore[no-untyped-def]
        config["linux"]["devices"] = [FUSE]
        config["linux"]["resources"] = {"devices": list(rules)}

    return edit


@pytest.fixture
def devices_cgroup(directories):  # type: ignore[no-untyped-def]
    if "devices" not in directories("stockade/probe"):
        pytest.skip("this host has no cgroup v1 devices controller")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("these tests open /dev/fuse, which this host does not have")
    return directories


@pytest.mark.both_file_access
def test_device_denied_by_spec(stockade, make_bundle, devices_cgroup):
    bundle = make_bundle("sh", "-c", OPEN_DEVICES, edit=device_rules(DENY_ALL))
    result = stockade("run", "--bundle", str(bundle), "c1")
    assert "fuse-read" not in result.stdout
    assert "fuse-write" not in result.stdout
    assert "can't open /dev/fuse: Operation not permitted" in result.stderr
    assert "null-write" in result.stdout
    assert result.stdout.split()[-1] == "4"  # four bytes read from /dev/zero


def test_device_allowed_by_spec(stockade, make_bundle, devices_cgroup):
    fuse = {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    bundle = make_bundle("sh", "-c", OPEN_DEVICES, edit=device_rules(DENY_ALL, fuse))
    result = stockade("run", "--bundle", str(bundle), "c1")
    assert "fuse-read" in result.stdout
    assert "fuse-write" in result.stdout
    assert "null-write" in result.stdout


def test_device_rules_in_spec_order(stockade, make_bundle, devices_cgroup):
    fuse = {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
    no_read = {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "r"}
    edit = device_rules(DENY_ALL, fuse, no_read)
    result = stockade(
        "run", "--bundle", str(make_bundle("sh", "-c", OPEN_DEVICES, edit=edit)), "c1"
    )
    assert "fuse-read" not in result.stdout
    assert "fuse-write" in result.stdout


def test_device_cgroup_list_and_removal(stockade, make_bundle, devices_cgroup):
    bundle = make_bundle("sleep", "30", edit=device_rules(DENY_ALL))
    stockade.ok("create", "--bundle", str(bundle), "c1")
    path = devices_cgroup("stockade/c1")["devices"]
    listed = read(path, "devices.list").splitlines()
    stockade.ok("delete", "--force", "c1")
    assert "c 10:229 rwm" not in listed
    assert "a *:* rwm" not in listed
    for default in ("c 1:3 rwm", "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm"):
        assert default in listed
    assert not os.path.exists(path)


def test_device_rule_hole_rejected(stockade, make_bundle):
    every_char = {"allow": True, "type": "c", "access": "rwm"}
    no_fuse = {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    bundle = make_bundle("true", edit=device_rules(DENY_ALL, every_char, no_fuse))
    result = stockade("create", "--bundle", str(bundle), "c1")
    assert result.returncode == 1
    assert "linux.resources.devices[2]" in result.stderr
    assert "wildcard" in result.stderr
    assert not (stockade.root / "c1").exists()


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"allow": True, "type": "p", "access": "rwm"}, ".type 'p'"),
        ({"allow": True, "type": "c", "access": "rx"}, ".access 'rx'"),
        ({"allow": True, "type": "c", "access": ""}, ".access ''"),
        ({"type": "c", "access": "r"}, ".allow"),
        ({"allow": True, "type": "c", "major": "10", "access": "r"}, ".major '10'"),
    ],
)
def test_device_rule_invalid(stockade, make_bundle, rule, field):
    result = stockade(
        "create", "--bundle", str(make_bundle("true", edit=device_rules(rule))), "c1"
    )
    assert result.returncode == 1
    assert f"linux.resources.devices[0]{field}" in result.stderr


def test_device_rules_not_applied_on_v2(tmp_path, monkeypatch):
    """On a cgroup v2 layout, create reports the device list instead of ignoring it."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    monkeypatch.setattr(cgroups, "ROOT", str(tmp_path))
    resources = {"devices": [DENY_ALL], "pids": {"limit": 10}}
    not_applied = cgroups.create("stockade/c1", resources, os.getpid())
    assert list(not_applied) == ["linux.resources.devices"]
    assert "BPF" in not_applied["linux.resources.devices"]
    assert read(str(tmp_path / "stockade" / "c1"), "pids.max") == "10"


def test_device_rule_format():
    rules = [
        (DENY_ALL, "a"),
        (
            {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
            "c 10:229 rw",
        ),
        ({"allow": True, "type": "b", "major": 8, "access": "r"}, "b 8:* r"),
        (
            {"allow": True, "type": "c", "major": -1, "minor": -1, "access": "m"},
            "c *:* m",
        ),
    ]
    for rule, line in rules:
        assert cgroups.device_rule(rule) == line


def test_cgroup_namespace_root(stockade, make_bundle, directories):
    def edit(config):  # type: ignore[no-untyped-def]
        config["linux"]["namespaces"].append({"type": "cgroup"})
        config["linux"]["resources"] = {"pids": {"limit": 64}}

    bundle = make_bundle("cat", "/proc/self/cgroup", edit=edit)
    result = stockade("run", "--bundle", str(bundle), "c1")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line]
    assert lines
    # Each line is ID:CONTROLLERS:PATH, and the namespace's root is "/".
    assert all(line.rsplit(":", 1)[1] == "/" for line in lines), result.stdout


def test_hooks_see_container_cgroups(stockade, make_bundle, directories, tmp_path):
    seen = tmp_path / "seen"
    script = (
        "import json, sys\n"
        "state = json.load(sys.stdin)\n"
        f"open({str(seen)!r}, 'w').write(open('/proc/%d/cgroup' % state['pid']).read())\n"
    )
    hook = tmp_path / "hook.py"
    hook.write_text(script)

    def edit(config):  # type: ignore[no-untyped-def]
        config["hooks"] = {
            "createRuntime": [{"path": sys.executable, "args": ["python3", str(hook)]}]
        }

    bundle = make_bundle("true", edit=edit)
    stockade.ok("create", "--bundle", str(bundle), "c1")
    stockade.ok("delete", "--force", "c1")
    assert "/stockade/c1" in seen.read_text()


def test_refused_limit_leaves_no_cgroup(stockade, make_bundle, directories):
    def edit(config):  # type: ignore[no-untyped-def]
        config["linux"]["resources"] = {"cpu": {"cpus": str(os.cpu_count() + 100)}}

    bundle = make_bundle("true", edit=edit)
    result = stockade("create", "--bundle", str(bundle), "c1")
    assert result.returncode != 0
    assert "cpuset.cpus" in result.stderr, result.stderr
    assert "linux.resources.cpu.cpus" in result.stderr
    assert not any(os.path.exists(d) for d in directories("stockade/c1").values())


def test_delete_after_killed_create(stockade, make_bundle, directories, tmp_path):
    started = tmp_path / "hook.pid"
    script = f"echo $$ > {started}.tmp; mv {started}.tmp {started}; exec sleep 60"

    def edit(config):  # type: ignore[no-untyped-def]
        config["hooks"] = {
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]
        }
        config["linux"]["resources"] = {"pids": {"limit": 64}}

    bundle = make_bundle("true", edit=edit)
    executable = os.path.join(os.path.dirname(sys.executable), "stockade")
    command = [executable, "--root", str(stockade.root), "create", "--bundle", str(bundle), "c1"]
    create = subprocess.Popen(command, env=stockade.env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    # The sandbox is in its cgroups by the time the create hooks run.
    create.kill()
    create.wait()
    os.kill(int(started.read_text()), signal.SIGKILL)  # the hook this test started
    stockade.ok("delete", "--force", "c1")
    assert not any(os.path.exists(d) for d in directories("stockade/c1").values())


@pytest.fixture
def limited_parent(devices_cgroup):  # type: ignore[no-untyped-def]
    """Return a cgroup path whose devices parent allows /dev/null alone."""
    parent = devices_cgroup("stockade-test/limited")["devices"]
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, "devices.deny"), "w") as f:
        f.write("a")
    with open(os.path.join(parent, "devices.allow"), "w") as f:
        f.write("c 1:3 rwm")
    yield "stockade-test/limited/c1"
    for path in devices_cgroup("stockade-test/limited").values():
        for directory in (path, os.path.dirname(path)):  # the parents this test named
            if os.path.isdir(directory):
                os.rmdir(directory)


def test_rejected_device_rules_only_warn(stockade, make_bundle, limited_parent):
    def edit(config):  # type: ignore[no-untyped-def]
        config["linux"]["cgroupsPath"] = limited_parent
        config["linux"]["resources"] = {"devices": [DENY_ALL]}

    bundle = make_bundle("sh", "-c", "echo x > /dev/null && echo null-write", edit=edit)
    result = stockade("run", "--bundle", str(bundle), "c1")
    assert result.returncode == 0, result.stderr
    assert "linux.resources.devices is not applied" in result.stderr
    assert "null-write" in result.stdout

"""linux.resources through cgroups, pause and resume, and events --stats."""

from __future__ import annotations

import json
import os

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

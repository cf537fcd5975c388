"""OCI hooks from config.json: order, namespaces, state on stdin, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest


def hook(log: Path, name: str, *, exit_code: int = 0, timeout: int | None = None,
         sleep: int = 0) -> dict:  # type: ignore[type-arg]  # fmt: skip
    """A hook that appends NAME, its hostname and the state it read to LOG."""
    script = (
        f'state=$(cat); echo "{name} $(hostname) $state" >> {log}; '
        f"sleep {sleep}; exit {exit_code}"
    )
    entry = {"path": "/bin/sh", "args": ["sh", "-c", script]}
    if timeout is not None:
        entry["timeout"] = timeout
    return entry


def with_hooks(hooks):  # type: ignore[no-untyped-def]
    def edit(config):  # type: ignore[no-untyped-def]
        config["hostname"] = "in-container"
        config["hooks"] = hooks

    return edit


def read_log(log: Path) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    entries = []
    for line in log.read_text().splitlines():
        name, hostname, state = line.split(" ", 2)
        entries.append((name, hostname, json.loads(state)))
    return entries


def test_hooks_run_in_order(stockade, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"
    inside_log = Path("/tmp/hooks.log")  # startContainer runs in the container
    kinds = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    hooks = {kind: [hook(log, kind)] for kind in kinds}
    hooks["startContainer"] = [hook(inside_log, "startContainer")]
    bundle = make_bundle("true", edit=with_hooks(hooks))

    stockade.ok("create", "--bundle", str(bundle), "c1")
    pid = stockade.state("c1")["pid"]
    stockade.ok("start", "c1")
    stockade.ok("delete", "--force", "c1")

    entries = read_log(log)
    assert [name for name, _, _ in entries] == list(kinds)
    hostnames = {name: hostname for name, hostname, _ in entries}
    assert hostnames["createRuntime"] == os.uname().nodename
    assert hostnames["createContainer"] == "in-container"
    states = {name: state for name, _, state in entries}
    assert states["createRuntime"]["status"] == "creating"
    assert states["createRuntime"]["pid"] == pid
    assert states["poststart"]["status"] == "running"
    assert states["poststop"]["status"] == "stopped"
    assert states["poststop"]["id"] == "c1"
    inside = (bundle / "rootfs" / "tmp" / "hooks.log").read_text().split(" ", 2)
    assert inside[:2] == ["startContainer", "in-container"]


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_destroys(stockade, make_bundle, tmp_path, kind):
    log = tmp_path / "hooks.log"
    bundle = make_bundle(
        "true", edit=with_hooks({kind: [hook(log, kind, exit_code=3)]})
    )
    pid_file = tmp_path / "pid"

    result = stockade(
        "create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1"
    )

    assert result.returncode == 1
    assert f"{kind} hook 0" in result.stderr
    assert not pid_file.exists()
    assert not (stockade.root / "c1").exists()


def test_failing_start_hook_fails_start(stockade, make_bundle, tmp_path):
    hooks = {"startContainer": [hook(Path("/tmp/log"), "startContainer", exit_code=1)]}
    bundle = make_bundle("true", edit=with_hooks(hooks))
    stockade.ok("create", "--bundle", str(bundle), "c1")

    result = stockade("start", "c1")
    stockade.ok("delete", "--force", "c1")

    assert result.returncode == 1
    assert "startContainer hook 0" in result.stderr


def test_failing_poststart_only_warns(stockade, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"
    bundle = make_bundle(
        "true", edit=with_hooks({"poststart": [hook(log, "p", exit_code=1)]})
    )

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.returncode == 0
    assert "poststart hook 0" in result.stderr


def test_hook_timeout(stockade, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"
    slow = hook(log, "createRuntime", timeout=1, sleep=30)
    bundle = make_bundle("true", edit=with_hooks({"createRuntime": [slow]}))

    result = stockade("create", "--bundle", str(bundle), "c1", timeout=20)

    assert result.returncode == 1
    assert "timed out after 1s" in result.stderr


def test_malformed_hook_rejected(stockade, make_bundle):
    bundle = make_bundle(
        "true", edit=with_hooks({"prestart": [{"path": "relative/hook"}]})
    )

    result = stockade("create", "--bundle", str(bundle), "c1")

    assert result.returncode == 1
    assert "must be absolute" in result.stderr


def test_sandbox_killed_during_hook(stockade, make_bundle, tmp_path):
    state = tmp_path / "state.json"
    script = f"cat > {state}.tmp; mv {state}.tmp {state}; sleep 2"
    hooks = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}
    bundle = make_bundle("true", edit=with_hooks(hooks))
    executable = os.path.join(os.path.dirname(sys.executable), "stockade")
    command = [executable, "--root", str(stockade.root), "create", "--bundle", str(bundle), "c1"]
    with tempfile.TemporaryFile() as err:
        create = subprocess.Popen(command, env=stockade.env, stdin=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 30
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)  # this test's sandbox
        code = create.wait(timeout=30)
        err.seek(0)
        stderr = err.read().decode()
    assert code != 0
    assert "exited during boot" in stderr, stderr
    assert "Broken pipe" not in stderr

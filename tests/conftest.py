"""Fixtures: the stockade command, busybox bundles, and checks that nothing leaked.

Every test gets its own ``--root``. After each test the ``no_leaks`` fixture
fails the test if a process started with that root still runs, if a mount
under the test's temporary directory remains, or if a state directory is
left under the root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
STOCKADE = str(VENV_BIN / "stockade")
MAKE_BUNDLE = REPO / "tests" / "make_bundle.sh"


def pytest_configure(config: pytest.Config) -> None:
    # PID 1 on these machines does not reap orphans. Sandboxes outlive the
    # `stockade create` that started them, so this process adopts and reaps them.
    from stockade import linux

    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    config.addinivalue_line(
        "markers", "both_file_access: run the test under direct and gofer file access"
    )
    if os.geteuid() != 0:
        pytest.exit("the tests run real containers and need root", returncode=1)
    if shutil.which("busybox") is None:
        pytest.exit(
            "busybox not found: run `make test`, which installs busybox-static", 1
        )


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Stockade:
    """Runs the installed ``stockade`` command with this test's --root."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.env = dict(os.environ, **(env or {}))
        self.env.pop("STOCKADE_CONFIG", None)

    def __call__(self, *args: str, timeout: float = 60, input: str | None = None,
                 env: dict[str, str] | None = None, root: bool = True,
                 cwd: str | None = None) -> Result:  # fmt: skip
        command = [STOCKADE]
        if root:
            command += ["--root", str(self.root)]
        command += list(args)
        # Files, not pipes: after `create` the container keeps the command's stdout
        # and stderr, so reading a pipe to its end would wait for the container.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            completed = subprocess.run(
                command,
                stdout=out,
                stderr=err,
                text=True,
                timeout=timeout,
                input=input,
                env=dict(self.env, **(env or {})),
                stdin=None if input is not None else subprocess.DEVNULL,
                cwd=cwd,
            )
            out.seek(0)
            err.seek(0)
            return Result(completed.returncode, out.read(), err.read())

    def ok(self, *args: str, **kwargs: Any) -> Result:
        result = self(*args, **kwargs)
        assert result.returncode == 0, (
            f"stockade {' '.join(args)} failed: {result.stderr}"
        )
        return result

    def state(self, container_id: str) -> dict[str, Any]:
        return json.loads(self.ok("state", container_id).stdout)


@pytest.fixture(scope="session")
def base_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox bundle built once; tests copy it."""
    bundle = tmp_path_factory.mktemp("base") / "bundle"
    subprocess.run(
        ["sh", str(MAKE_BUNDLE), str(bundle)], check=True, capture_output=True
    )
    return bundle


@pytest.fixture
def make_bundle(base_rootfs: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """make_bundle(*args, name=..., **config changes) -> bundle path with that process."""
    counter = iter(range(1000))

    def make(*args: str, name: str | None = None, edit=None) -> Path:  # type: ignore[no-untyped-def]
        bundle = tmp_path / (name or f"bundle{next(counter)}")
        shutil.copytree(base_rootfs, bundle, symlinks=True)
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["args"] = list(args) or ["true"]
        if edit is not None:
            edit(config)
        (bundle / "config.json").write_text(json.dumps(config, indent=2))
        return bundle

    return make


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def file_access() -> str:
    """The file-access mode of `stockade`; tests marked both_file_access get both."""
    return "direct"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_file_access") is not None:
        metafunc.parametrize("file_access", ["direct", "gofer"])


@pytest.fixture
def stockade(root: Path, tmp_path: Path, no_leaks: None, file_access: str) -> Stockade:
    return Stockade(root, env={"STOCKADE_FILE_ACCESS": file_access})


@pytest.fixture
def host_pid_namespace():  # type: ignore[no-untyped-def]
    """The path of a new PID namespace whose PID 1 is a host `sleep`, for a spec to join.

    The sleep is killed after the test; `unshare` reaps it and exits.
    """
    holder = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", "sleep", "300"]
    )
    children = f"/proc/{holder.pid}/task/{holder.pid}/children"
    child = 0
    try:
        deadline = time.monotonic() + 5
        while not child and time.monotonic() < deadline:
            with open(children) as f:
                found = f.read().split()
            if found:
                child = int(found[0])
            else:
                time.sleep(0.02)
        assert child, "unshare did not start its child"
        yield f"/proc/{child}/ns/pid"
    finally:
        if child:
            os.kill(child, signal.SIGKILL)  # started by this fixture
        holder.kill()
        holder.wait()


@pytest.fixture
def pod_pid_namespace(stockade, make_bundle):  # type: ignore[no-untyped-def]
    """The path of the PID namespace of a running container "pod", as a pod shares it.

    PID 1 there is the pod's sandbox process.
    """
    stockade.ok("create", "--bundle", str(make_bundle("sleep", "100")), "pod")
    stockade.ok("start", "pod")
    yield f"/proc/{stockade.state('pod')['pid']}/ns/pid"
    stockade("delete", "--force", "pod")


def join_pid_namespace(path: str):  # type: ignore[no-untyped-def]
    """Return a config edit that makes the container join the PID namespace at PATH."""

    def edit(config: dict[str, Any]) -> None:
        namespaces = [n for n in config["linux"]["namespaces"] if n["type"] != "pid"]
        config["linux"]["namespaces"] = [*namespaces, {"type": "pid", "path": path}]

    return edit


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains TEXT."""
    found = []
    needle = text.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{name}/stat", "rb") as f:
                zombie = f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        except OSError:
            continue
        if needle in cmdline and not zombie:
            found.append(int(name))
    return found


def reap_orphans() -> None:
    """Reap the exited processes this subreaper adopted."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    prefix = str(path) + "/"
    return [p for p in points if p.startswith(prefix) or p == str(path)]


@pytest.fixture
def no_leaks(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Fail the test if it left a sandbox process, a mount or a state directory."""
    yield
    deadline = time.monotonic() + 5
    while processes_mentioning(str(root)) and time.monotonic() < deadline:
        time.sleep(0.05)  # a sandbox killed by the test may still be exiting
    leaked = processes_mentioning(str(root))
    for pid in leaked:
        os.kill(pid, signal.SIGKILL)  # started by this test: it names this test's root
    reap_orphans()
    mounts = mounts_under(tmp_path)
    states = sorted(os.listdir(root)) if root.exists() else []
    for container_id in states:
        subprocess.run([STOCKADE, "--root", str(root), "delete", "--force", container_id],
                       capture_output=True, timeout=30)  # fmt: skip
    assert not leaked, f"processes left running: {leaked}"
    assert not mounts, f"mounts left behind: {mounts}"
    assert not states, f"state directories left behind: {states}"

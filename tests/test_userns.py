"""A user namespace with the spec's id mappings."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

HOST_ID = 200000

pytestmark = pytest.mark.both_file_access


@pytest.fixture
def traversable_dir():  # type: ignore[no-untyped-def]
    """A directory the mapped root can reach: pytest's own temporary tree is 0700."""
    path = Path(tempfile.mkdtemp(prefix="stockade-userns-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path)


def map_ids(config):  # type: ignore[no-untyped-def]
    config["linux"]["namespaces"].append({"type": "user"})
    mapping = [{"containerID": 0, "hostID": HOST_ID, "size": 65536}]
    config["linux"]["uidMappings"] = mapping
    config["linux"]["gidMappings"] = mapping


def mapped_bundle(stockade, make_bundle, traversable_dir, *args, edit=map_ids):  # type: ignore[no-untyped-def]
    """Make a bundle running ARGS that the namespace's root owns and can reach."""
    bundle = traversable_dir / "bundle"
    shutil.move(make_bundle(*args, edit=edit), bundle)
    for path in [bundle / "rootfs", *(bundle / "rootfs").rglob("*")]:
        os.lchown(path, HOST_ID, HOST_ID)
    # Under the gofer, the sandbox passes through the state directory's parents.
    stockade.root = traversable_dir / "state"
    return bundle


def run_mapped(stockade, make_bundle, traversable_dir, script, edit=map_ids):  # type: ignore[no-untyped-def]
    """Run SCRIPT in a user namespace; return its output lines and its bundle."""
    bundle = mapped_bundle(
        stockade, make_bundle, traversable_dir, "sh", "-c", script, edit=edit
    )
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    return result.stdout.splitlines(), bundle


def test_user_namespace_maps_ids(stockade, make_bundle, traversable_dir):
    script = "cat /proc/self/uid_map; id -u; touch /tmp/x && echo wrote"
    lines, bundle = run_mapped(stockade, make_bundle, traversable_dir, script)
    assert lines[0].split() == ["0", str(HOST_ID), "65536"]
    assert lines[1:] == ["0", "wrote"]
    assert (bundle / "rootfs" / "tmp" / "x").stat().st_uid == HOST_ID


def test_user_namespace_without_mappings(stockade, make_bundle):
    def user_namespace(config):  # type: ignore[no-untyped-def]
        config["linux"]["namespaces"].append({"type": "user"})

    bundle = make_bundle("true", edit=user_namespace)
    result = stockade("run", "--bundle", str(bundle), "c1")
    assert result.returncode == 1
    assert "linux.uidMappings" in result.stderr


def test_unmapped_file_stays_closed(stockade, make_bundle, traversable_dir):
    """Root in the user namespace has no rights over a file of an unmapped owner."""
    shared = traversable_dir / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    secret = shared / "secret"
    secret.write_text("host root only\n")
    secret.chmod(0o600)  # owned by the host's root, which the namespace does not map

    def edit(config):  # type: ignore[no-untyped-def]
        map_ids(config)
        config["mounts"].append(
            {"destination": "/shared", "type": "bind", "source": str(shared),
             "options": ["rbind"]}
        )  # fmt: skip

    script = "cat /shared/secret 2>/dev/null || echo denied; stat -c %u /shared/secret"
    lines, _ = run_mapped(stockade, make_bundle, traversable_dir, script, edit)
    assert lines == ["denied", "65534"]  # the overflow uid: unmapped


def test_init_is_pid_1_in_user_namespace(stockade, make_bundle, traversable_dir):
    script = "echo $$; grep -c ' /proc ' /proc/self/mountinfo"
    lines, _ = run_mapped(stockade, make_bundle, traversable_dir, script)
    assert lines == ["1", "1"], "not PID 1, or /proc mounted twice"


def test_unreachable_bundle_named(stockade, make_bundle, traversable_dir):
    """A rootfs behind a directory the namespace's root cannot search is named, with the fix."""
    closed = traversable_dir / "closed"
    closed.mkdir()
    closed.chmod(0o700)  # owned by the host's root, which the namespace does not map
    bundle = closed / "bundle"
    shutil.move(make_bundle("true", edit=map_ids), bundle)

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.returncode == 1
    assert f"cannot search {closed}" in result.stderr, result.stderr
    assert f"chmod o+x {closed}" in result.stderr, result.stderr


def test_unreachable_state_root_named(stockade, make_bundle, traversable_dir, file_access):
    """Under the gofer the sandbox passes through the state root's parents by path."""
    if file_access != "gofer":
        pytest.skip("only the gofer's sandbox reaches the state directory by path")
    closed = traversable_dir / "closed"
    closed.mkdir()
    closed.chmod(0o700)
    bundle = traversable_dir / "bundle"
    shutil.move(make_bundle("true", edit=map_ids), bundle)
    for path in [bundle / "rootfs", *(bundle / "rootfs").rglob("*")]:
        os.lchown(path, HOST_ID, HOST_ID)
    stockade.root = closed / "state"

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.returncode == 1
    assert f"cannot search {closed}" in result.stderr, result.stderr
    assert f"chmod o+x {closed}" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "mapping",
    [
        [{"containerID": 0, "hostID": HOST_ID, "size": 0}],
        [{"containerID": 0, "hostID": HOST_ID, "size": 10},
         {"containerID": 5, "hostID": HOST_ID + 100, "size": 10}],
    ],
)  # fmt: skip
def test_invalid_id_mapping_named(stockade, make_bundle, traversable_dir, mapping):
    def edit(config):  # type: ignore[no-untyped-def]
        map_ids(config)
        config["linux"]["uidMappings"] = mapping

    bundle = traversable_dir / "bundle"
    shutil.move(make_bundle("true", edit=edit), bundle)
    stockade.root = traversable_dir / "state"

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.returncode == 1
    assert "linux.uidMappings" in result.stderr, result.stderr
    assert "OSError" not in result.stderr, result.stderr


def test_exec_in_user_namespace(stockade, make_bundle, traversable_dir):
    """An exec process hands its filter's listener to the sandbox, as the init does."""
    bundle = mapped_bundle(stockade, make_bundle, traversable_dir, "sleep", "100")
    stockade.ok("create", "--bundle", str(bundle), "c1")
    stockade.ok("start", "c1")

    try:
        result = stockade("exec", "c1", "sh", "-c", "id -u; echo $$", timeout=20)
    finally:
        stockade("delete", "--force", "c1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "2"]


def test_tmpfs_copy_up_in_user_namespace(stockade, make_bundle, traversable_dir):
    """podman --read-only requests tmpcopyup tmpfs mounts, in a user namespace too."""
    def edit(config):  # type: ignore[no-untyped-def]
        map_ids(config)
        config["mounts"].append(
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["rw", "nosuid", "nodev", "tmpcopyup"]}
        )  # fmt: skip

    script = "stat -c '%u %a' /tmp; echo x > /tmp/x && echo wrote"
    lines, _ = run_mapped(stockade, make_bundle, traversable_dir, script, edit)
    assert lines == ["0 1777", "wrote"]


def test_debug_log_in_user_namespace(stockade, make_bundle, traversable_dir):
    """The --debug trace goes to the --log file, which the namespace's root cannot open."""
    bundle = mapped_bundle(stockade, make_bundle, traversable_dir, "cat", "/etc/passwd")
    log = traversable_dir / "debug.log"

    result = stockade("--debug", "--log", str(log), "run", "--bundle", str(bundle), "c1")

    assert result.returncode == 0, result.stderr
    assert "/etc/passwd" in log.read_text()

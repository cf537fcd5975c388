"""Symlinks in the image must not lead a mount, or a file it creates, to the host.

Each test points a symlink in the rootfs at a directory on the host that the
test created. Resolved inside the rootfs, as the runtime must resolve it, the
same path names a mirror directory in the rootfs, so a correct runtime mounts
there and the container's mount table shows that path. The host directory must
stay empty, and no mount may appear under it in the host's mount table.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.both_file_access


def host_mounts_under(path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


@pytest.fixture
def host_dir(tmp_path):
    path = tmp_path / "host"
    path.mkdir()
    return path


def mirror(bundle, host_dir):
    """Create HOST_DIR's path inside BUNDLE's rootfs; return it."""
    path = bundle / "rootfs" / str(host_dir).lstrip("/")
    path.mkdir(parents=True)
    return path


def absolute_link(host_dir):
    return str(host_dir)


def relative_link(host_dir):
    """A relative symlink target that reaches HOST_DIR when followed on the host."""
    return "../" * 30 + str(host_dir).lstrip("/")


LINKS = [absolute_link, relative_link]
LINK_IDS = ["absolute", "relative"]


def escape_bundle(make_bundle, host_dir, link, script, mount):
    """A bundle whose rootfs has evil -> LINK(host_dir) and the extra MOUNT."""

    def edit(config):
        config["mounts"].append(mount)

    bundle = make_bundle("sh", "-c", script, edit=edit)
    os.symlink(link(host_dir), bundle / "rootfs" / "evil")
    return bundle


@pytest.mark.parametrize("link", LINKS, ids=LINK_IDS)
def test_tmpfs_under_symlink(stockade, make_bundle, host_dir, link):
    mount = {"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs"}
    script = f"grep ' {host_dir}/x ' /proc/self/mountinfo"
    bundle = escape_bundle(make_bundle, host_dir, link, script, mount)
    inside = mirror(bundle, host_dir)

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert os.listdir(host_dir) == [], "the mount point was created on the host"
    assert host_mounts_under(host_dir) == [], "a mount appeared on the host"
    assert result.returncode == 0, (
        f"the tmpfs is not at the in-rootfs path: {result.stderr}"
    )
    assert " - tmpfs " in result.stdout
    assert os.listdir(inside) == ["x"], "the mount point is not in the rootfs"


@pytest.mark.parametrize("link", LINKS, ids=LINK_IDS)
def test_bind_onto_symlink(stockade, make_bundle, host_dir, link, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "payload").write_text("from the bundle\n")
    mount = {
        "destination": "/evil",
        "type": "bind",
        "source": str(source),
        "options": ["rbind"],
    }
    script = f"cat {host_dir}/payload; touch /evil/written"
    bundle = escape_bundle(make_bundle, host_dir, link, script, mount)
    mirror(bundle, host_dir)

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert os.listdir(host_dir) == [], "the bind mount reached the host directory"
    assert host_mounts_under(host_dir) == [], "a mount appeared on the host"
    assert result.returncode == 0, (
        f"the bind mount is not at the in-rootfs path: {result.stderr}"
    )
    assert result.stdout == "from the bundle\n"
    assert (source / "written").exists(), (
        "writes through /evil did not reach the bind source"
    )


@pytest.mark.parametrize("link", LINKS, ids=LINK_IDS)
def test_bind_onto_dangling_symlink_fails(
    stockade, make_bundle, host_dir, link, tmp_path
):
    # No mirror: inside the rootfs the symlink dangles, so the mount cannot land.
    source = tmp_path / "source"
    source.mkdir()
    mount = {
        "destination": "/evil",
        "type": "bind",
        "source": str(source),
        "options": ["rbind"],
    }
    bundle = escape_bundle(make_bundle, host_dir, link, "true", mount)

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert os.listdir(host_dir) == [], "the bind mount reached the host directory"
    assert host_mounts_under(host_dir) == [], "a mount appeared on the host"
    assert result.returncode != 0, "a mount onto a dangling symlink succeeded"


@pytest.mark.parametrize("link", LINKS, ids=LINK_IDS)
def test_file_bind_onto_symlink(stockade, make_bundle, host_dir, link, tmp_path):
    source = tmp_path / "greeting"
    source.write_text("hello\n")
    mount = {
        "destination": "/etc/evil",
        "type": "bind",
        "source": str(source),
        "options": ["bind"],
    }

    def edit(config):
        config["mounts"].append(mount)

    bundle = make_bundle("cat", "/etc/evil", edit=edit)
    target = host_dir / "created"
    os.symlink(link(target), bundle / "rootfs" / "etc" / "evil")

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert os.listdir(host_dir) == [], (
        f"files created on the host: {os.listdir(host_dir)}"
    )
    assert host_mounts_under(host_dir) == [], "a mount appeared on the host"
    assert result.returncode != 0 or result.stdout == "hello\n", result


def test_bundle_parent_not_visible(stockade, make_bundle, tmp_path):
    (tmp_path / "marker").write_text("host secret\n")
    bundle = make_bundle("sh", "-c", "ls -a /.. /../..; cat /../marker /../../marker")

    result = stockade("run", "--bundle", str(bundle), "c1")
    listing = result.stdout.split()

    assert "host secret" not in result.stdout, (
        "the container read a file next to the bundle"
    )
    assert "marker" not in listing, "the container lists the bundle's parent directory"
    assert "config.json" not in listing, "the container lists the bundle directory"
    assert "No such file or directory" in result.stderr

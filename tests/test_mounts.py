"""Mounts from config.json with their options, as engines write them."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.both_file_access


def test_bind_mount_options(stockade, make_bundle, tmp_path):
    host_dir = tmp_path / "data"
    host_dir.mkdir()
    (host_dir / "file").write_text("from host\n")
    host_file = tmp_path / "hosts"
    host_file.write_text("127.0.0.1 localhost\n")

    def add_mounts(config):  # type: ignore[no-untyped-def]
        config["mounts"] += [
            {"destination": "/data", "type": "bind", "source": str(host_dir),
             "options": ["bind", "rprivate", "ro", "nosuid", "nodev"]},
            {"destination": "/etc/hosts", "type": "bind", "source": str(host_file),
             "options": ["bind", "rprivate"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"]},
        ]  # fmt: skip

    script = "cat /data/file /etc/hosts; touch /data/x 2>/dev/null || echo read-only"
    bundle = make_bundle("sh", "-c", script, edit=add_mounts)
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    assert result.stdout.splitlines() == [
        "from host",
        "127.0.0.1 localhost",
        "read-only",
    ]
    assert not (host_dir / "x").exists()


def test_linux_devices_created(stockade, make_bundle):
    def add_device(config):  # type: ignore[no-untyped-def]
        config["linux"]["devices"] = [
            {"path": "/dev/fuse-test", "type": "c", "major": 1, "minor": 3,
             "fileMode": 0o620, "uid": 0, "gid": 0},
        ]  # fmt: skip

    script = "ls -l /dev/fuse-test; echo written > /dev/fuse-test && echo ok"
    bundle = make_bundle("sh", "-c", script, edit=add_device)
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    assert result.stdout.startswith("crw--w----")
    assert "1,   3" in result.stdout
    assert result.stdout.splitlines()[-1] == "ok"


def test_linux_devices_outside_dev_rejected(stockade, make_bundle):
    def add_device(config):  # type: ignore[no-untyped-def]
        config["linux"]["devices"] = [
            {"path": "/etc/null", "type": "c", "major": 1, "minor": 3}
        ]

    result = stockade(
        "run", "--bundle", str(make_bundle("true", edit=add_device)), "c1"
    )
    assert result.returncode == 1
    assert "needs a path under /dev" in result.stderr


def test_linux_devices_dotdot_rejected(stockade, make_bundle):
    def add_device(config):  # type: ignore[no-untyped-def]
        config["linux"]["devices"] = [
            {"path": "/dev/../etc/x", "type": "c", "major": 1, "minor": 3}
        ]

    bundle = make_bundle("true", edit=add_device)
    result = stockade("run", "--bundle", str(bundle), "c1")
    assert result.returncode == 1
    assert not (bundle / "rootfs" / "etc" / "x").exists()


def test_tmpfs_copy_up(stockade, make_bundle):
    def add_tmpfs(config):  # type: ignore[no-untyped-def]
        config["root"]["readonly"] = True
        config["mounts"].append(
            {"destination": "/opt", "type": "tmpfs", "source": "tmpfs",
             "options": ["rw", "nosuid", "nodev", "tmpcopyup"]}
        )  # fmt: skip

    script = "stat -c '%u:%g %a' /opt/sub/tool; readlink /opt/link; touch /opt/new"
    bundle = make_bundle("sh", "-c", script, edit=add_tmpfs)
    (bundle / "rootfs" / "opt" / "sub").mkdir(parents=True)
    tool = bundle / "rootfs" / "opt" / "sub" / "tool"
    tool.write_text("#!/bin/sh\n")
    os.chown(tool, 5, 6)
    tool.chmod(0o4750)
    (bundle / "rootfs" / "opt" / "link").symlink_to("sub/tool")

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["5:6 4750", "sub/tool"]
    assert not (bundle / "rootfs" / "opt" / "new").exists()


def test_tmpfs_copy_up_root_owner(stockade, make_bundle):
    """The tmpfs itself takes the owner and mode of the image's directory."""
    def add_tmpfs(config):  # type: ignore[no-untyped-def]
        config["mounts"].append(
            {"destination": "/opt", "type": "tmpfs", "source": "tmpfs",
             "options": ["rw", "tmpcopyup"]}
        )  # fmt: skip

    bundle = make_bundle("stat", "-c", "%u:%g %a", "/opt", edit=add_tmpfs)
    opt = bundle / "rootfs" / "opt"
    opt.mkdir()
    os.chown(opt, 7, 8)
    opt.chmod(0o750)

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "7:8 750"


def test_rootfs_masked_readonly_paths(stockade, make_bundle, tmp_path):
    host_dir = tmp_path / "data"
    host_dir.mkdir()
    (host_dir / "secret").write_text("hidden\n")

    def edit(config):  # type: ignore[no-untyped-def]
        config["mounts"].append(
            {"destination": "/data", "type": "bind", "source": str(host_dir),
             "options": ["rbind"]}
        )  # fmt: skip
        config["linux"]["maskedPaths"] = ["/data/secret", "/etc", "/missing"]
        config["linux"]["readonlyPaths"] = ["/data", "/home"]

    script = (
        "echo secret=$(cat /data/secret); ls /etc | wc -l; "
        "touch /data/new 2>/dev/null || echo data-read-only; "
        "touch /home/new 2>/dev/null || echo home-read-only; "
        "touch /tmp/new && echo tmp-writable"
    )
    bundle = make_bundle("sh", "-c", script, edit=edit)
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    assert result.stdout.split() == [
        "secret=", "0", "data-read-only", "home-read-only", "tmp-writable",
    ]
    assert (host_dir / "secret").read_text() == "hidden\n"
    assert not (host_dir / "new").exists()

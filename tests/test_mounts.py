"""Mounts from config.json with their options, as engines write them."""

from __future__ import annotations


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

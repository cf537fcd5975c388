"""Real programs under the ptrace sentry: busybox shells and tools, Debian's python3."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.both_file_access

SHELL_SCRIPT = r"""
set -e
printf 'b\na\nc\n' > /tmp/in
sort /tmp/in | tr '\n' ' '; echo
grep -c a /tmp/in
sed 's/a/A/' /tmp/in | tr -d '\n'; echo
awk '{ n += length($0) } END { print "chars", n }' /tmp/in
echo data > /tmp/f 2>/dev/null; cat < /tmp/f
trap 'echo trapped' USR1
kill -USR1 $$
sleep 0.2 & sleep 0.1 & wait
echo waited
find /etc -name passwd
ls /bin/sh
mkdir -p /tmp/t/d && echo x > /tmp/t/d/file
tar -C /tmp/t -cf /tmp/t.tar d && tar -tf /tmp/t.tar | sort | tr '\n' ' '; echo
sha256sum /tmp/f | cut -d' ' -f1
( exit 3 ) || echo "subshell status $?"
echo end
"""


def test_busybox_shell_and_tools(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", SHELL_SCRIPT)
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    digest = hashlib.sha256(b"data\n").hexdigest()
    assert result.stdout.splitlines() == [
        "a b c ",
        "1",
        "bAc",
        "chars 3",
        "data",
        "trapped",
        "waited",
        "/etc/passwd",
        "/bin/sh",
        "d/ d/file ",
        digest,
        "subshell status 3",
        "end",
    ]


def test_pipeline_of_many_processes(stockade, make_bundle):
    bundle = make_bundle(
        "sh", "-c", "seq 1 2000 | grep 7 | sort -rn | head -n 3 | wc -l"
    )
    assert stockade.ok("run", "--bundle", str(bundle), "c1").stdout.strip() == "3"


def test_stop_and_continue_job(stockade, make_bundle):
    script = "sleep 5 & pid=$!; kill -STOP $pid; kill -CONT $pid; kill $pid; wait $pid; echo $?"
    bundle = make_bundle("sh", "-c", script)
    assert stockade.ok("run", "--bundle", str(bundle), "c1").stdout.strip() == "143"


def test_init_exit_kills_the_rest(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "sleep 30 & sleep 30 & exit 4")
    assert stockade("run", "--bundle", str(bundle), "c1", timeout=20).returncode == 4


DEBIAN_CACHE = Path(os.environ.get("STOCKADE_TEST_CACHE", "/var/cache/stockade-tests"))
DEBIAN_MIRROR = "http://deb.debian.org/debian"


@pytest.fixture(scope="session")
def debian_rootfs() -> Path:
    """A Debian bookworm minbase root with python3, built once and cached."""
    rootfs = DEBIAN_CACHE / "debian-bookworm"
    if (rootfs / "usr" / "bin" / "python3").exists():
        return rootfs
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed: `make test` installs it")
    partial = DEBIAN_CACHE / "debian-bookworm.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    command = ["debootstrap", "--variant=minbase", "--include=python3", "bookworm",
               str(partial), DEBIAN_MIRROR]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.skip(f"debootstrap failed, so no Debian root: {result.stdout[-500:]}")
    partial.rename(rootfs)
    return rootfs


@pytest.fixture
def debian_bundle(debian_rootfs: Path, base_rootfs: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """make(*args): a bundle whose root is the cached Debian root, read-only."""
    import json

    def make(*args: str) -> Path:
        bundle = tmp_path / "debian"
        bundle.mkdir()
        config = json.loads((base_rootfs / "config.json").read_text())
        config["root"] = {"path": str(debian_rootfs), "readonly": True}
        config["process"]["args"] = list(args)
        config["process"]["env"] = ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root"]
        config["mounts"].append(
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        )
        (bundle / "config.json").write_text(json.dumps(config))
        return bundle

    return make


PYTHON_THREADS = """
import threading, hashlib
results = []
def work(n):
    results.append(hashlib.sha256(str(n).encode() * 1000).hexdigest()[:8])
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(results), len(set(results)))
"""


def test_debian_python_threads(stockade, debian_bundle):
    bundle = debian_bundle("python3", "-c", PYTHON_THREADS)
    result = stockade.ok("run", "--bundle", str(bundle), "c1", timeout=120)
    assert result.stdout.strip() == "8 8"


def test_debian_apt_get_version(stockade, debian_bundle):
    bundle = debian_bundle("apt-get", "--version")
    result = stockade.ok("run", "--bundle", str(bundle), "c1", timeout=120)
    assert result.stdout.startswith("apt ")

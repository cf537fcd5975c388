"""The system-call wrappers in stockade.linux, against the real kernel."""

from __future__ import annotations

import errno
import os
import subprocess
import time

from stockade import linux

RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT = 0x02, 0x10


def test_openat2_survives_mount_churn(tmp_path):
    """Check that openat2 retries a ".." step that EAGAIN interrupted.

    The mounts run in a mount namespace of the test's own. That is enough,
    because the kernel keeps one mount sequence count for all namespaces.
    """
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "root" / "b").mkdir()
    (tmp_path / "mnt").mkdir()
    churn = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"while :; do mount -t tmpfs churn {tmp_path}/mnt; umount {tmp_path}/mnt; done"]
    )  # fmt: skip
    root = os.open(tmp_path / "root", os.O_PATH)
    failures = 0
    try:
        time.sleep(0.1)
        for _ in range(20000):
            try:
                fd = linux.openat2(
                    root, "a/../b", os.O_PATH, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
                )
            except OSError as exc:
                assert exc.errno == errno.EAGAIN, exc
                failures += 1
            else:
                os.close(fd)
    finally:
        os.close(root)
        churn.kill()
        churn.wait()
    assert failures == 0

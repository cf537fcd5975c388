"""`stockade do`: a host command in a sandbox with the host's root read-only.

/tmp inside is a fresh tmpfs, so the host directory these tests write to is
made under /var/tmp instead, where the container reads the host's files.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest


@pytest.fixture
def host_dir():
    path = tempfile.mkdtemp(prefix="stockade-do-test-", dir="/var/tmp")
    yield path
    shutil.rmtree(path)


@pytest.mark.both_file_access
def test_do_hides_host_sockets(stockade):
    result = do(stockade, "find /run/ /var/run/ -mindepth 1 | wc -l")
    assert result.stdout.strip() == "0"


def do(stockade, script):
    return stockade("do", "--", "sh", "-c", script)


def test_do_stdout_passes_through(stockade):
    result = do(stockade, "echo hello")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"


def test_do_exit_code_propagates(stockade):
    assert do(stockade, "exit 7").returncode == 7


def test_do_host_root_readable(stockade, host_dir):
    with open(os.path.join(host_dir, "file"), "w") as f:
        f.write("original\n")

    result = do(stockade, f"cat {host_dir}/file")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "original\n"


def test_do_host_write_fails(stockade, host_dir):
    result = do(stockade, f"touch {host_dir}/new")

    assert result.returncode != 0, "touch on the host's root succeeded"
    assert "Read-only file system" in result.stderr
    assert os.listdir(host_dir) == [], "the write reached the host"


def test_do_host_overwrite_fails(stockade, host_dir):
    path = os.path.join(host_dir, "file")
    with open(path, "w") as f:
        f.write("original\n")

    result = do(stockade, f"echo changed > {path}; echo ran")

    assert result.stdout == "ran\n", f"the command did not run: {result.stderr}"
    assert "Read-only file system" in result.stderr
    with open(path) as f:
        assert f.read() == "original\n", "the host file changed"


def test_do_tmp_empty_and_writable(stockade, tmp_path):
    (tmp_path / "marker").write_text("host /tmp")

    result = do(stockade, "ls -A /tmp; touch /tmp/new && ls /tmp")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "new\n", "/tmp is not a fresh, writable directory"
    assert not os.path.exists("/tmp/new"), "the write to /tmp reached the host"


def test_do_keeps_cwd(stockade, host_dir):
    result = stockade("do", "--", "sh", "-c", "pwd", cwd=host_dir)

    assert result.returncode == 0, result.stderr
    assert result.stdout == host_dir + "\n"


def test_do_cwd_under_tmp_falls_back(stockade, tmp_path):
    result = stockade(
        "do", "--", "sh", "-c", "pwd; ls -A /tmp | wc -l", cwd=str(tmp_path)
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/", "0"]


def test_do_leaves_no_state(stockade):
    # Passes whether the command ran or `do` failed to build the sandbox.
    do(stockade, "true")

    assert not stockade.root.exists() or os.listdir(stockade.root) == []

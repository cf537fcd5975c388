"""process.terminal with --console-socket: the pty master goes to the engine."""

from __future__ import annotations

import array
import os
import select
import socket
import threading
import time
from pathlib import Path

import pytest


class ConsoleSocket:
    """A console socket like an engine's: receives the master, then talks through it."""

    def __init__(self, path: Path, typed: bytes) -> None:
        self.path = path
        self.typed = typed
        self.output = b""
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            fds = array.array("i")
            _, ancillary, _, _ = conn.recvmsg(256, socket.CMSG_LEN(fds.itemsize))
            for _, _, data in ancillary:
                fds.frombytes(data[: fds.itemsize])
        master = fds[0]
        os.write(master, self.typed)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break  # the last holder of the pty's other end is gone
            if not chunk:
                break
            self.output += chunk
        os.close(master)

    def close(self) -> bytes:
        self.thread.join(timeout=15)
        self.server.close()
        return self.output.replace(b"\r", b"")


def terminal(config):  # type: ignore[no-untyped-def]
    config["process"]["terminal"] = True


def test_terminal_through_console_socket(stockade, make_bundle, tmp_path):
    console = ConsoleSocket(tmp_path / "console.sock", b"echo typed-$((6*7))\nexit 3\n")
    bundle = make_bundle("sh", "-c", "tty; exec sh", edit=terminal)
    result = stockade(
        "run", "--console-socket", str(console.path), "--bundle", str(bundle), "c1"
    )
    output = console.close()
    assert result.returncode == 3
    assert b"/dev/pts/0\n" in output
    assert b"typed-42\n" in output


def test_terminal_needs_console_socket(stockade, make_bundle):
    result = stockade("create", "--bundle", str(make_bundle("sh", edit=terminal)), "c1")
    assert result.returncode == 1
    assert "--console-socket" in result.stderr


def test_console_socket_needs_terminal(stockade, make_bundle, tmp_path):
    path = tmp_path / "unused.sock"
    result = stockade(
        "create",
        "--console-socket",
        str(path),
        "--bundle",
        str(make_bundle("sh")),
        "c1",
    )
    assert result.returncode == 1
    assert "process.terminal" in result.stderr


def test_console_socket_missing(stockade, make_bundle, tmp_path):
    path = tmp_path / "missing.sock"
    bundle = make_bundle("sh", edit=terminal)
    result = stockade(
        "create", "--console-socket", str(path), "--bundle", str(bundle), "c1"
    )
    assert result.returncode == 1
    assert "cannot send the terminal" in result.stderr
    assert not (stockade.root / "c1").exists()

"""The "none" network mode: a network namespace of the sandbox's own, loopback only.

If the spec names a network namespace path, the sandbox joins it and this mode
leaves it as it is, because its creator configures it. Otherwise the
sandbox gets a new namespace, and ``setup`` brings its ``lo`` up. A spec without
any network namespace also gets a new one, so the application never shares the
host's network unless ``--network=host`` is chosen.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
from collections.abc import Iterator
from typing import ClassVar

from stockade import linux
from stockade.hookspecs import hookimpl
from stockade.providers import NETWORK, Container, Namespace

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class NoNetwork:
    name = "none"
    kind: ClassVar[str] = NETWORK
    description = (
        "a private network namespace with only loopback, or the spec's netns path"
    )

    def adjust_namespaces(
        self, container: Container, namespaces: list[Namespace]
    ) -> None:
        if not any(n.type == "network" for n in namespaces):
            namespaces.append(Namespace("network"))

    def setup(self, container: Container) -> None:
        joined = any(n.type == "network" and n.path for n in container.namespaces)
        if joined:
            return
        with entered_netns(f"/proc/{container.sandbox_pid}/ns/net"):
            set_link_up("lo")

    def teardown(self, container: Container) -> None:
        pass  # the namespace ends with the sandbox process


@contextlib.contextmanager
def entered_netns(path: str) -> Iterator[None]:
    """Switch this (single-threaded) process into the netns at PATH, then back."""
    original = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(target, linux.CLONE_NEWNET)
        try:
            yield
        finally:
            linux.setns(original, linux.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(original)


def set_link_up(name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh14x", name.encode(), 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(
            sock, SIOCSIFFLAGS, struct.pack("16sh14x", name.encode(), flags | IFF_UP)
        )


@hookimpl
def stockade_providers():  # type: ignore[no-untyped-def]
    return [NoNetwork()]

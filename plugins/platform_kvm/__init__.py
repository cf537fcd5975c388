"""The kvm platform: reserved for running the application inside a KVM virtual machine.

NOTE: this release cannot run containers on KVM. The provider is registered so
that ``--platform=kvm`` fails with a clear message, after checking that
/dev/kvm responds, instead of an "unknown platform" error.
"""

from __future__ import annotations

import fcntl
import os
from typing import ClassVar

from stockade.errors import ConfigError
from stockade.hookspecs import hookimpl
from stockade.providers import PLATFORM, Container

KVM_GET_API_VERSION = 0xAE00
KVM_API_VERSION = 12


class KvmPlatform:
    name = "kvm"
    kind: ClassVar[str] = PLATFORM
    description = "not available yet: the application would run inside a KVM VM"

    def check(self, container: Container) -> None:
        try:
            fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigError(
                f"--platform=kvm: cannot open /dev/kvm: {exc.strerror}"
            ) from None
        try:
            version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
        finally:
            os.close(fd)
        if version != KVM_API_VERSION:
            raise ConfigError(
                f"--platform=kvm: /dev/kvm has API version {version}, not 12"
            )
        raise ConfigError(
            "--platform=kvm cannot run containers in this release; use --platform=ptrace"
        )

    def prepare(self, container: Container) -> None:
        raise NotImplementedError

    def launch(self, container, child_setup):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def run(self, container, init_pid):  # type: ignore[no-untyped-def]
        raise NotImplementedError


@hookimpl
def stockade_providers():  # type: ignore[no-untyped-def]
    return [KvmPlatform()]

"""The "host" network mode: the sandbox shares the host's network namespace.

The application sees and uses the host's interfaces directly, so this mode
trades isolation for speed and simplicity; choose it explicitly.
"""

from __future__ import annotations

from typing import ClassVar

from stockade.hookspecs import hookimpl
from stockade.providers import NETWORK, Container, Namespace


class HostNetwork:
    name = "host"
    kind: ClassVar[str] = NETWORK
    description = "share the host's network namespace (no network isolation)"

    def adjust_namespaces(
        self, container: Container, namespaces: list[Namespace]
    ) -> None:
        namespaces[:] = [n for n in namespaces if n.type != "network"]

    def setup(self, container: Container) -> None:
        pass

    def teardown(self, container: Container) -> None:
        pass


@hookimpl
def stockade_providers():  # type: ignore[no-untyped-def]
    return [HostNetwork()]

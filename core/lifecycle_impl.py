"""The core's own hook implementations: each performs its lifecycle step.

They are registered before any plugin and marked ``trylast``, so every
plugin's plain implementation of a hook runs before the step happens and can
veto it by raising.
"""

from __future__ import annotations

from . import sandbox
from .hookspecs import hookimpl
from .providers import FILE_ACCESS, NETWORK, Container, Namespace

# Every sandbox gets these, whatever the spec requests: they are what keeps the
# application away from the host's processes, mounts, IPC objects and hostname.
REQUIRED_NAMESPACES = ("pid", "mount", "ipc", "uts")


@hookimpl(trylast=True)
def stockade_namespaces(container: Container, namespaces: list[Namespace]) -> None:
    container.providers[NETWORK].adjust_namespaces(container, namespaces)
    present = {n.type for n in namespaces}
    for kind in REQUIRED_NAMESPACES:
        if kind not in present:
            namespaces.append(Namespace(kind))


@hookimpl(trylast=True)
def stockade_file_access(container: Container) -> None:
    container.providers[FILE_ACCESS].prepare(container)


@hookimpl(trylast=True)
def stockade_network(container: Container) -> None:
    container.providers[NETWORK].setup(container)


@hookimpl(trylast=True)
def stockade_start(container: Container) -> None:
    sandbox.start(container)


@hookimpl(trylast=True)
def stockade_network_teardown(container: Container) -> None:
    container.providers[NETWORK].teardown(container)


@hookimpl(trylast=True)
def stockade_file_access_teardown(container: Container) -> None:
    container.providers[FILE_ACCESS].teardown(container)

"""The "direct" file-access mode: the sandbox mounts the bundle's rootfs itself.

The sandbox process bind-mounts the rootfs, performs the spec's mounts with
destinations resolved inside the rootfs, and pivots into it. No helper
process runs, so there is nothing to tear down.
"""

from __future__ import annotations

import os
from typing import ClassVar

from stockade.hookspecs import hookimpl
from stockade.providers import FILE_ACCESS, Container
from stockade.rootfs import RootBuilder


class DirectFileAccess:
    name = "direct"
    kind: ClassVar[str] = FILE_ACCESS
    description = "the sandbox mounts the bundle's rootfs and the spec's mounts itself"

    def prepare(self, container: Container) -> None:
        pass

    def setup_root(self, container: Container) -> None:
        staging = os.path.join(container.state_dir, "root")
        RootBuilder(container.spec, staging=staging).build(container.before_pivot)

    def teardown(self, container: Container) -> None:
        pass


@hookimpl
def stockade_providers():  # type: ignore[no-untyped-def]
    return [DirectFileAccess()]

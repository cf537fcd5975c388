"""The named providers that plugins contribute, and the container context.

A provider is a record with a ``name`` and a ``kind``. The core picks one
platform, one file-access mode and one network mode by name for each container
and calls them through the small protocols below; it never imports a plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from .config import Settings
    from .spec import Spec

PLATFORM = "platform"
FILE_ACCESS = "file_access"
NETWORK = "network"
KINDS = (PLATFORM, FILE_ACCESS, NETWORK)


@dataclass
class Namespace:
    """One namespace the sandbox creates, or joins when ``path`` is set."""

    type: str
    path: str | None = None


@dataclass
class Container:
    """The lifecycle's view of one container while a command runs.

    ``plugin_state`` is saved with the container's state, so a provider that
    starts something in ``create`` finds what it needs again in ``delete``.
    Keys are plugin names; values must be JSON-serialisable. ``providers`` maps
    each kind (platform, file_access, network) to the provider chosen for it;
    ``hook`` is the plugin manager's hook relay, for the hooks that providers call.
    ``syscall_hooks`` is set inside the sandbox: the functions a platform calls
    for each mediated system call, by hook name. A file-access provider calls
    ``before_pivot``, when set, after its mounts and before pivot_root; the OCI
    create hooks run there.
    """

    id: str
    bundle: str
    spec: Spec
    settings: Settings
    state_dir: str
    namespaces: list[Namespace] = field(default_factory=list)
    sandbox_pid: int = 0
    providers: dict[str, Any] = field(default_factory=dict)
    hook: Any = None
    syscall_hooks: dict[str, list[Any]] = field(default_factory=dict)
    before_pivot: Callable[[], None] | None = None
    cgroup: str = ""
    plugin_state: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    # Descriptors a provider opened in create for the sandbox process to keep.
    inherit_fds: list[int] = field(default_factory=list)
    # The sentry's client of a file server (stockade.sentry.fileproto), when
    # the file-access mode has one; the platform then sends it every path call.
    file_server: Any = None
    # Set inside the sandbox by a file-access provider whose root the application
    # may not write: a writable descriptor of that root, for the sentry's files.
    sandbox_root_fd: int = -1
    # Set inside the sandbox: records a fault for `state` to show.
    note_problem: Callable[[str], None] | None = None


class Provider(Protocol):
    name: str
    kind: ClassVar[str]
    description: str


class Platform(Provider, Protocol):
    """Runs the application's processes and reports how its init exited.

    ``check`` runs on the host in ``create``; the other methods run inside the
    sandbox process. ``prepare`` runs before the sandbox gives up the host's
    file system, so it must import every module the platform needs later.
    """

    def check(self, container: Container) -> None: ...

    def prepare(self, container: Container) -> None: ...

    def launch(self, container: Container, child_setup: ChildSetup) -> int:
        """Start the container's init process and return its pid.

        The platform forks; in the child it does its own set-up, then calls
        ``child_setup.exec()``, which applies the OCI process settings and
        never returns.
        """
        ...

    def run(self, container: Container, init_pid: int) -> int:
        """Run until init exits, then end every other process; return init's wait status."""
        ...

    def spawn_helper(self, container: Container, main: Callable[[], None]) -> int:
        """Fork a helper that runs MAIN and whose children run on this platform.

        Called in the sandbox after ``launch``; the exec launcher runs in it.
        """
        ...

    def prepare_exec_child(self) -> None:
        """Set up a child of the helper for the platform, just before its exec."""
        ...


class ChildSetup(Protocol):
    """Applies the OCI process settings in a forked child; see stockade.process."""

    def before_fork(self) -> None:
        """Call in the parent just before forking the child."""

    def exec(self) -> None:
        """Call in the child: apply the settings and execve; never returns."""

    def result(self) -> str | None:
        """Call in the parent once the child has exec'd or exited: its exec error, or None."""


class FileAccess(Provider, Protocol):
    """Gives the sandbox its root file system.

    ``prepare`` runs on the host in ``create`` before the sandbox starts (a gofer
    starts here); ``setup_root`` runs inside the sandbox's new mount namespace
    and must end with the process's root at the container's rootfs;
    ``teardown`` runs on the host in ``delete`` and must be idempotent.

    A provider may also define ``check_process(container, launcher)``, run in
    the sandbox after ``setup_root``, to create a missing cwd and find the
    executable; without it the core looks in the sandbox's own root.

    Any provider may define ``unsupported(spec)``, returning why it cannot
    run SPEC or None, together with ``fallback``, the name of a provider of
    the same kind. When the provider is only the built-in default and
    ``unsupported`` gives a reason, ``create`` uses the fallback and logs
    the reason. A provider chosen by flag, environment or config file is
    kept, and its ``prepare`` reports the problem.
    """

    def prepare(self, container: Container) -> None: ...

    def setup_root(self, container: Container) -> None: ...

    def teardown(self, container: Container) -> None: ...


class NetworkMode(Provider, Protocol):
    """Decides the sandbox's network namespace and configures it.

    ``adjust_namespaces`` runs on the host before the sandbox starts; ``setup``
    runs on the host once the sandbox is ready (its pid is known);
    ``teardown`` runs in ``delete`` and must be idempotent.
    """

    def adjust_namespaces(
        self, container: Container, namespaces: list[Namespace]
    ) -> None: ...

    def setup(self, container: Container) -> None: ...

    def teardown(self, container: Container) -> None: ...

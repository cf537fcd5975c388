"""Hook specifications: every point where a plugin takes part in the lifecycle.

Call order for one container::

    stockade_providers, stockade_config_tables   (once, when plugins load)
    create:  stockade_pre_create
             stockade_namespaces
             stockade_file_access          -> the sandbox process starts
             stockade_network              -> state saved, pid file written
    start:   stockade_start
    delete:  stockade_network_teardown     (reverse order of create)
             stockade_file_access_teardown
             stockade_post_delete

Each lifecycle hook receives the :class:`~stockade.providers.Container`. The
core performs the step itself in its own implementation of the hook, which
runs after every plugin's plain implementation, so a plugin can:

- observe a step: implement the hook and read ``container``;
- veto a step: raise :class:`~stockade.errors.VetoError` (``create`` then
  destroys what it made and reports the message);
- wrap a step: implement it with ``@hookimpl(wrapper=True)`` and ``yield``.

Teardown hooks call every plain implementation even when one raises, and the
errors are reported together after all have run. Wrappers are not called for
teardown hooks.

The lifecycle hooks run on the host in the short-lived CLI process, so a
plugin may use host paths and write logs there. The sandbox hooks
(``stockade_sandbox_prepare``, ``stockade_syscall``, ``stockade_syscall_result``)
run inside the sandbox process. After ``stockade_sandbox_prepare`` returns, the
host's file system is out of the sandbox's reach, so open any file you need there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .providers import Container, Namespace, Provider

PROJECT = "stockade"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration: called once while plugins load ---------------------------


@hookspec
def stockade_providers() -> Iterable[Provider]:
    """Declare the named platforms, file-access modes and network modes a plugin provides.

    Called once when plugins load. Results from all plugins are collected; two
    providers of one kind with the same name are an error that names both
    plugins.

    Example::

        @hookimpl
        def stockade_providers():
            return [MyNetworkMode()]   # has .name, .kind, .description
    """


@hookspec
def stockade_config_tables() -> dict[str, dict[str, type]]:
    """Declare the TOML tables this plugin reads from the Stockade config, and their keys.

    Return ``{table: {key: type}}``. A table ``[plugins.<table>]`` in the config
    is then checked: unknown keys and wrong types are errors naming the key and
    the file. Results from all plugins are merged.

    Example::

        @hookimpl
        def stockade_config_tables():
            return {"audit": {"path": str, "enabled": bool}}
    """


# --- create ------------------------------------------------------------------


@hookspec
def stockade_pre_create(container: Container) -> None:
    """Inspect a container before anything is made for it; raise VetoError to reject it.

    Called first in ``create`` and ``run``, after the bundle's config.json is read
    and the providers are chosen. Nothing exists yet, so a veto leaves nothing
    to clean up.

    Example::

        @hookimpl
        def stockade_pre_create(container):
            if container.spec.process.get("user", {}).get("uid") == 0:
                raise VetoError(f"{container.id}: running as root is not allowed here")
    """


@hookspec
def stockade_namespaces(container: Container, namespaces: list[Namespace]) -> None:
    """Adjust the namespaces the sandbox process creates or joins.

    ``namespaces`` starts as the spec's ``linux.namespaces`` list; change it in
    place (append, remove, or set a ``path`` to join an existing one). The core's
    own implementation runs last: it lets the chosen network mode adjust the
    list and then adds the namespaces every sandbox needs (pid, mount, ipc, uts).

    Example::

        @hookimpl
        def stockade_namespaces(container, namespaces):
            namespaces.append(Namespace("cgroup"))
    """


@hookspec
def stockade_file_access(container: Container) -> None:
    """Prepare the container's file access before the sandbox process starts.

    The core's implementation calls the chosen file-access provider's
    ``prepare`` (the gofer mode starts its gofer here). Wrap this hook to add
    work around it; raise VetoError to stop ``create``.
    """


@hookspec
def stockade_network(container: Container) -> None:
    """Configure the sandbox's network once its process is ready.

    ``container.sandbox_pid`` is set, so ``/proc/<pid>/ns/net`` names the
    sandbox's network namespace. The core's implementation calls the chosen
    network mode's ``setup``.

    Example::

        @hookimpl
        def stockade_network(container):
            log.info("sandbox %s uses netns of pid %d", container.id, container.sandbox_pid)
    """


# --- start ---------------------------------------------------------------------


@hookspec
def stockade_start(container: Container) -> None:
    """Start the application; raise VetoError to refuse.

    Called by ``start`` (and ``run``) while the container is ``created``. The
    core's implementation asks the sandbox process to launch the application
    on the chosen platform, so code before that point runs while nothing
    has started and a wrapper sees the outcome.
    """


# --- inside the sandbox -------------------------------------------------------------


@hookspec
def stockade_sandbox_prepare(container: Container) -> Iterable[str] | None:
    """Get ready inside the sandbox process while host paths are still visible.

    Called in the sandbox process after it has its namespaces and before it
    builds the container's root. Open the files that ``stockade_syscall`` or
    ``stockade_syscall_result`` will write to here, and import what they need.

    Return the names of the syscall hooks this plugin needs for this container
    (``"stockade_syscall"``, ``"stockade_syscall_result"``); an empty list turns
    them off, which spares the application the stops they cost. None keeps
    every syscall hook the plugin implements.

    Example::

        @hookimpl
        def stockade_sandbox_prepare(container):
            path = container.settings.plugin_table("audit").get("path")
            if not path:
                return []
            global audit_log
            audit_log = open(path, "a")
            return ["stockade_syscall_result"]
    """


@hookspec(firstresult=True)
def stockade_syscall(container: Container, call: Any) -> int | None:
    """Decide a mediated system call of the application before it runs.

    Called in the sandbox process each time the application makes a system
    call that the policy mediates. ``call`` has ``pid``, ``nr``, ``name``, the raw
    ``args`` and ``decoded()``, which returns the arguments with paths and socket
    addresses read from the application's memory. Return an errno (for
    example ``errno.EACCES``) to fail the call, or None to let it run. The first
    non-None result wins. While this hook runs, every other application process
    is stopped, so memory that a decision read cannot change before the kernel
    reads it.

    Example::

        @hookimpl
        def stockade_syscall(container, call):
            if call.name == "openat" and call.decoded()[1] == "/etc/shadow":
                return errno.EACCES
    """


@hookspec
def stockade_syscall_result(container: Container, call: Any, result: int) -> None:
    """Observe a mediated system call of the application after it ran.

    Called in the sandbox process with the call's return value (a negative
    errno on failure). Implementing this hook costs one more stop per mediated
    call, so only implement it when you need the results.

    Example::

        @hookimpl
        def stockade_syscall_result(container, call, result):
            audit_log.write(f"{call.pid} {call.name} = {result}\n")
    """


# --- delete --------------------------------------------------------------------


@hookspec
def stockade_network_teardown(container: Container) -> None:
    """Undo ``stockade_network``; must be idempotent.

    Called by ``delete`` after the sandbox process has been ended, and by a
    failed ``create``. Every implementation runs even if another raised.
    """


@hookspec
def stockade_file_access_teardown(container: Container) -> None:
    """Undo ``stockade_file_access`` (stop a gofer, for example); must be idempotent.

    Called after ``stockade_network_teardown``. Every implementation runs even if
    another raised.
    """


@hookspec
def stockade_post_delete(container: Container) -> None:
    """Observe that a container is gone; its state directory is already removed.

    Every implementation runs even if another raised.

    Example::

        @hookimpl
        def stockade_post_delete(container):
            metrics.containers_deleted += 1
    """


TEARDOWN_HOOKS = (
    "stockade_network_teardown",
    "stockade_file_access_teardown",
    "stockade_post_delete",
)


def hook_names() -> list[str]:
    return [name for name, value in globals().items() if name.startswith("stockade_")]


def describe(name: str) -> Any:
    return globals()[name].__doc__

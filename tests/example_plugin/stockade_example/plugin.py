"""Example Stockade plugin: a network mode, an audit log and a veto.

- Network mode ``example``: a private network namespace with ``lo`` up and a
  veth pair ``example0``/``example1`` inside it. ``example0`` has the address
  192.0.2.1/24, a range reserved for documentation. Both ends of the pair stay
  in the sandbox, so no traffic leaves it.
- Audit log: every lifecycle hook appends ``<hook> <container id>`` to the
  file named by ``[plugins.example] log`` in the Stockade config.
- Veto: a container whose annotation ``org.example.veto`` is ``"true"`` is
  rejected before anything is made for it.
"""

from __future__ import annotations

import os
from typing import ClassVar

from stockade.errors import VetoError
from stockade.hookspecs import hookimpl
from stockade.providers import NETWORK, Container, Namespace

VETO_ANNOTATION = "org.example.veto"


class ExampleNetwork:
    name = "example"
    kind: ClassVar[str] = NETWORK
    description = "private netns with lo and a veth example0 at 192.0.2.1/24"

    def adjust_namespaces(
        self, container: Container, namespaces: list[Namespace]
    ) -> None:
        namespaces[:] = [n for n in namespaces if n.type != "network"]
        namespaces.append(Namespace("network"))

    def setup(self, container: Container) -> None:
        from pyroute2 import NetNS  # imported here: only this mode pays for it

        with NetNS(f"/proc/{container.sandbox_pid}/ns/net") as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            ns.link("add", ifname="example0", kind="veth", peer="example1")
            index = ns.link_lookup(ifname="example0")[0]
            ns.addr("add", index=index, address="192.0.2.1", prefixlen=24)
            ns.link("set", index=index, state="up")
        container.plugin_state["example"] = {"interface": "example0"}

    def teardown(self, container: Container) -> None:
        pass  # the veth pair ends with the sandbox's network namespace


def _audit(container: Container, hook: str) -> None:
    path = container.settings.plugin_table("example").get("log")
    if path:
        with open(path, "a") as log:
            log.write(f"{hook} {container.id}\n")


@hookimpl
def stockade_providers():
    return [ExampleNetwork()]


@hookimpl
def stockade_config_tables():
    return {"example": {"log": str}}


@hookimpl
def stockade_pre_create(container):
    _audit(container, "pre_create")
    if container.annotations.get(VETO_ANNOTATION) == "true":
        raise VetoError(f"container {container.id}: rejected by {VETO_ANNOTATION}")


@hookimpl
def stockade_namespaces(container, namespaces):
    _audit(container, "namespaces")


@hookimpl
def stockade_file_access(container):
    _audit(container, "file_access")


@hookimpl(wrapper=True)
def stockade_network(container):
    result = yield  # the network is configured inside this yield
    _audit(container, f"network pid={container.sandbox_pid > 0}")
    return result


@hookimpl
def stockade_start(container):
    _audit(container, "start")


@hookimpl
def stockade_network_teardown(container):
    _audit(container, "network_teardown")


@hookimpl
def stockade_file_access_teardown(container):
    _audit(container, "file_access_teardown")


@hookimpl
def stockade_post_delete(container):
    gone = not os.path.exists(container.state_dir)
    _audit(container, f"post_delete state_removed={gone}")

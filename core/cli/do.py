import os
import sys
import uuid

import click

from ..spec import Spec, default_mounts


def host_spec(args: list[str], cwd: str, state_root: str) -> Spec:
    """A spec that runs ARGS on a read-only view of the host's root with a fresh /tmp.

    /run and the state root are hidden: they hold the host's Unix sockets
    (container engines, D-Bus, other sandboxes' control sockets), and a
    read-only mount does not stop connect(2) to a socket.
    """
    mounts = default_mounts()
    mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777"]})  # fmt: skip
    raw = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "args": args,
            "env": [f"{k}={v}" for k, v in os.environ.items()],
            "cwd": cwd,
            "user": {"uid": os.getuid(), "gid": os.getgid()},
            "noNewPrivileges": True,
        },
        "root": {"path": "/", "readonly": True},
        "hostname": "stockade-do",
        "mounts": mounts,
        "linux": {
            "namespaces": [
                {"type": t} for t in ("pid", "network", "ipc", "uts", "mount")
            ],
            # NOTE: a socket elsewhere on the host's file system stays reachable.
            "maskedPaths": ["/run", "/var/run", state_root],
        },
    }
    return Spec(raw=raw, bundle="/")


@click.command(
    "do",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("args", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def command(obj, args):
    """Run a host command sandboxed: the host's root read-only, a fresh /tmp.

    The command starts in the current directory, or in / when that directory is
    under /tmp, /run or the state root, which the sandbox replaces or hides.
    """
    container_id = f"do-{uuid.uuid4().hex[:12]}"
    cwd = os.getcwd()
    hidden = ("/tmp", "/run", "/var/run", obj.settings.root)
    if any(cwd == path or cwd.startswith(path.rstrip("/") + "/") for path in hidden):
        cwd = "/"  # the sandbox replaces or hides that directory
    spec = host_spec(list(args), cwd, obj.settings.root)
    sys.exit(obj.runtime.run(container_id, "/", spec=spec))

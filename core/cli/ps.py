import json
import os

import click

from ..errors import container_not_running
from .options import container_id


def sandbox_pids(sandbox_pid: int) -> list[int]:
    """Host pids of the container's processes: the sandbox's PID namespace, without
    the sandbox process and its helpers (which run the sandbox's own executable)."""
    try:
        namespace = os.stat(f"/proc/{sandbox_pid}/ns/pid").st_ino
        runtime_exe = _identity(f"/proc/{sandbox_pid}/exe")
    except OSError:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == sandbox_pid:
            continue
        try:
            if os.stat(f"/proc/{name}/ns/pid").st_ino != namespace:
                continue
            if _identity(f"/proc/{name}/exe") == runtime_exe:
                continue
        except OSError:
            continue
        pids.append(int(name))
    return sorted(pids)


def _identity(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


@click.command("ps")
@click.option(
    "--format",
    "-f",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
)
@container_id
@click.pass_obj
def command(obj, output_format, container_id):
    """List the processes running inside the container."""
    state = obj.store.load(container_id)
    if not state.sandbox_alive():
        raise container_not_running(container_id)
    pids = sandbox_pids(state.pid)
    if output_format == "json":
        click.echo(json.dumps(pids))
        return
    click.echo("PID    CMD")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        click.echo(f"{pid:<6} {cmd}")

import json
import os

import click

from ..errors import container_not_running
from .options import container_id


def sandbox_pids(sandbox_pid: int) -> list[int]:
    """Host pids of the processes in the sandbox's PID namespace, the sandbox excluded."""
    try:
        namespace = os.stat(f"/proc/{sandbox_pid}/ns/pid").st_ino
    except OSError:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == sandbox_pid:
            continue
        try:
            if os.stat(f"/proc/{name}/ns/pid").st_ino == namespace:
                pids.append(int(name))
        except OSError:
            continue
    return sorted(pids)


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

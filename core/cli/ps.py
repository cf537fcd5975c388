import json
import os

import click

from .. import linux
from ..errors import container_not_running
from .options import container_id


def sandbox_pids(sandbox_pid: int) -> list[int]:
    """Host pids of the container's processes, without the sandbox process and
    its helpers (which run the sandbox's own executable)."""
    try:
        runtime_exe = _identity(f"/proc/{sandbox_pid}/exe")
    except OSError:
        return []
    pids = []
    for pid in linux.pids_in_pid_namespace(sandbox_pid):
        if pid == sandbox_pid:
            continue
        try:
            if _identity(f"/proc/{pid}/exe") == runtime_exe:
                continue
        except OSError:
            continue
        pids.append(pid)
    return pids


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

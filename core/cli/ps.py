import json

import click

from ..errors import container_not_running
from ..sandbox import application_pids
from .options import container_id


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
    pids = application_pids(state.pid)
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

import json

import click

from ..errors import container_not_running
from .options import container_id
from .ps import sandbox_pids


@click.command("events")
@click.option("--stats", is_flag=True, help="Print one stats event and exit.")
@click.option("--interval", default=5, help="Seconds between stats events.")
@container_id
@click.pass_obj
def command(obj, stats, interval, container_id):
    """Print resource statistics of the container as JSON events."""
    import time

    while True:
        state = obj.store.load(container_id)
        if not state.sandbox_alive():
            raise container_not_running(container_id)
        event = {
            "type": "stats",
            "id": container_id,
            "data": {"pids": {"current": len(sandbox_pids(state.pid))}},
        }
        click.echo(json.dumps(event))
        if stats:
            return
        time.sleep(interval)

import json
import time

import click

from .options import container_id


@click.command("events")
@click.option("--stats", is_flag=True, help="Print one stats event and exit.")
@click.option(
    "--interval", default=5, show_default=True, help="Seconds between stats events."
)
@container_id
@click.pass_obj
def command(obj, stats, interval, container_id):
    """Print the container's memory, CPU and pids statistics as JSON events."""
    while True:
        data = obj.runtime.stats(container_id)
        click.echo(json.dumps({"type": "stats", "id": container_id, "data": data}))
        if stats:
            return
        time.sleep(interval)

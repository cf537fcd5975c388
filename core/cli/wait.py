import json

import click

from .options import container_id


@click.command("wait")
@container_id
@click.pass_obj
def command(obj, container_id):
    """Wait until the container exits; print its exit status as JSON."""
    code = obj.runtime.wait(container_id)
    click.echo(json.dumps({"id": container_id, "exitStatus": code}))

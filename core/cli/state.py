import json

import click

from .options import container_id


@click.command("state")
@container_id
@click.pass_obj
def command(obj, container_id):
    """Print the container's OCI state as JSON."""
    click.echo(json.dumps(obj.store.load(container_id).oci(), indent=2))

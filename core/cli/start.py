import click

from .options import container_id


@click.command("start")
@container_id
@click.pass_obj
def command(obj, container_id):
    """Start the application of a created container."""
    obj.runtime.start(container_id)

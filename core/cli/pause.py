import click

from .options import container_id


@click.command("pause")
@container_id
@click.pass_obj
def command(obj, container_id):
    """Freeze every process of a running container."""
    obj.runtime.pause(container_id, True)

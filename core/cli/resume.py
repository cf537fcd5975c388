import click

from .options import container_id


@click.command("resume")
@container_id
@click.pass_obj
def command(obj, container_id):
    """Thaw a paused container."""
    obj.runtime.pause(container_id, False)

import click

from .options import container_id


@click.command("delete")
@click.option(
    "--force", "-f", is_flag=True, help="Kill the container first if it is running."
)
@container_id
@click.pass_obj
def command(obj, force, container_id):
    """Delete a container and everything the runtime made for it."""
    obj.runtime.delete(container_id, force)

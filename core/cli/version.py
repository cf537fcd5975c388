import click

from .. import __version__
from ..spec import OCI_VERSION


@click.command("version")
def command():
    """Print the versions of Stockade and of the OCI spec it implements."""
    click.echo(f"stockade version {__version__}\nspec: {OCI_VERSION}")

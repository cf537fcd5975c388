import click

from ..errors import StockadeError


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args):
    """Run a process inside a running container (not supported yet)."""
    raise StockadeError("exec is not supported by this version of stockade")

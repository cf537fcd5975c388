import json

import click

from ..errors import StockadeError


@click.command("list")
@click.option("--format", "-f", "output_format", type=click.Choice(["table", "json"]),
              default="table", show_default=True, help="Output format.")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="Print only the container ids.")
@click.pass_obj
def command(obj, output_format, quiet):
    """List the containers under --root."""
    store = obj.store
    documents = []
    for container_id in store.ids():
        try:
            documents.append(store.load(container_id).oci())
        except (StockadeError, ValueError):  # removed or half-written while listing
            continue
    if quiet:
        for document in documents:
            click.echo(document["id"])
    elif output_format == "json":
        click.echo(json.dumps(documents))
    else:
        _print_table(documents)


def _print_table(documents):
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for d in documents:
        rows.append(
            (
                d["id"],
                str(d["pid"]),
                d["status"],
                d["bundle"],
                d["created"],
                d["owner"] or "root",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        )

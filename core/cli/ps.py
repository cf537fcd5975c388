import json

import click

from ..errors import ConfigError, StockadeError, container_not_running
from ..sandbox import application_pids
from .options import container_id


@click.command(
    "ps",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "--format",
    "-f",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
)
@container_id
@click.argument("ps_options", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def command(obj, output_format, container_id, ps_options):
    """List the processes running inside the container.

    Options after ID go to the host's ps(1), as with runc (`ps ID -ef`), and
    only the container's rows of its output are printed.
    """
    state = obj.store.load(container_id)
    if not state.sandbox_alive():
        raise container_not_running(container_id)
    pids = application_pids(state.pid)
    if output_format == "json":
        if ps_options:
            raise ConfigError(
                f"ps options {' '.join(ps_options)} need --format table; drop them "
                "for json"
            )
        click.echo(json.dumps(pids))
        return
    if ps_options:
        _host_ps(list(ps_options), set(pids))
        return
    click.echo("PID    CMD")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        click.echo(f"{pid:<6} {cmd}")


def _host_ps(options: list[str], pids: set[int]) -> None:
    """Run ps(1) with OPTIONS and print its header and the rows of PIDS."""
    import subprocess

    try:
        output = subprocess.run(
            ["ps", *options], capture_output=True, text=True, check=True
        ).stdout
    except FileNotFoundError:
        raise StockadeError("ps options need ps(1) on the host; install procps") from None
    except subprocess.CalledProcessError as exc:
        raise ConfigError(
            f"ps {' '.join(options)} failed: {exc.stderr.strip()}"
        ) from None
    lines = output.splitlines()
    header = lines[0].split() if lines else []
    if "PID" not in header:
        raise ConfigError(f"ps {' '.join(options)} prints no PID column to filter on")
    column = header.index("PID")
    click.echo(lines[0])
    for line in lines[1:]:
        fields = line.split(None, column + 1)
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in pids:
            click.echo(line)

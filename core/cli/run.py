import sys

import click

from .options import (
    bundle_option,
    check_terminal,
    console_socket_option,
    container_id,
    pid_file_option,
)


@click.command("run")
@bundle_option
@pid_file_option
@console_socket_option
@click.option(
    "--detach", "-d", is_flag=True, help="Return once the application has started."
)
@click.option("--no-pivot", is_flag=True, help="Accepted for runc compatibility.")
@click.option("--no-new-keyring", is_flag=True, help="Accepted for runc compatibility.")
@click.option(
    "--preserve-fds",
    type=int,
    default=0,
    help="Accepted for runc compatibility; must be 0.",
)
@container_id
@click.pass_obj
def command(
    obj,
    bundle,
    pid_file,
    console_socket,
    detach,
    no_pivot,
    no_new_keyring,
    preserve_fds,
    container_id,
):
    """Create and start a container, wait for it, delete it; exit with its status."""
    check_terminal(bundle, console_socket, preserve_fds)
    code = obj.runtime.run(
        container_id, bundle, pid_file, detach, console_socket=console_socket
    )
    sys.exit(code)

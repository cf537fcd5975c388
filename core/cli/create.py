import click

from .options import bundle_option, console_socket_option, container_id, pid_file_option


@click.command("create")
@bundle_option
@pid_file_option
@console_socket_option
@click.option(
    "--no-pivot",
    is_flag=True,
    help="Accepted for runc compatibility; pivot_root is always used.",
)
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
    no_pivot,
    no_new_keyring,
    preserve_fds,
    container_id,
):
    """Create a container from the bundle; start it later with `start`."""
    from .options import check_terminal

    check_terminal(bundle, console_socket, preserve_fds)
    obj.runtime.create(container_id, bundle, pid_file, console_socket=console_socket)

"""Options shared by several commands."""

from __future__ import annotations

import os

import click

from ..errors import ConfigError

bundle_option = click.option(
    "--bundle", "-b", default=".", show_default=True,
    help="Bundle directory holding config.json and the rootfs.",
)  # fmt: skip
pid_file_option = click.option(
    "--pid-file", default=None, help="Write the sandbox process's pid to this file."
)
console_socket_option = click.option(
    "--console-socket",
    default=None,
    help="Unix socket that receives the terminal's master fd.",
)
container_id = click.argument("container_id", metavar="ID")


def check_terminal(bundle: str, console_socket: str | None, preserve_fds: int) -> None:
    """Reject the fd-passing option this version does not implement."""
    if preserve_fds:
        raise ConfigError(f"--preserve-fds={preserve_fds} is not supported yet; pass 0")

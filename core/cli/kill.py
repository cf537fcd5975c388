import signal

import click

from ..errors import ConfigError
from .options import container_id


def parse_signal(value: str) -> int:
    """Accept 9, KILL or SIGKILL (any case)."""
    if value.isdigit():
        number = int(value)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = value.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        member = (
            getattr(signal.Signals, name, None)
            if name in signal.Signals.__members__
            else None
        )
        if member is not None:
            return int(member)
    raise ConfigError(
        f"invalid signal {value!r}: use a name such as TERM or KILL, or a number from 1 to {signal.NSIG - 1}"
    )


@click.command("kill")
@click.option(
    "--all",
    "-a",
    "all_processes",
    is_flag=True,
    help="Signal every process of the container.",
)
@container_id
@click.argument("signal_name", metavar="[SIGNAL]", default="SIGTERM")
@click.pass_obj
def command(obj, all_processes, container_id, signal_name):
    """Send a signal (default SIGTERM) to the container's init process."""
    obj.runtime.kill(container_id, parse_signal(signal_name), all_processes)

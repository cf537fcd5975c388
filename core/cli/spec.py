import json
import os

import click

from ..errors import ConfigError
from ..spec import default


@click.command("spec")
@click.option(
    "--bundle", "-b", default=".", show_default=True, help="Where to write config.json."
)
@click.argument("args", nargs=-1)
def command(bundle, args):
    """Write a default config.json (runc's defaults) into the bundle directory."""
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise ConfigError(f"{path} already exists: remove it first")
    try:
        with open(path, "x") as f:
            json.dump(default(list(args) or None), f, indent=2)
            f.write("\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None

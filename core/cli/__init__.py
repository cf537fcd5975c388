"""The ``stockade`` command line, compatible with runc's commands and flags.

Each command lives in a module of its own. Commands that only read state
(``state``, ``list``, ``ps``) never load plugins, which keeps them fast.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from .. import __version__
from ..errors import StockadeError
from ..logs import configure_logging

log = logging.getLogger("stockade")
# Command name -> module; a module is imported only when its command runs.
COMMAND_MODULES = {
    "create": "create", "start": "start", "run": "run", "state": "state",
    "list": "list_", "kill": "kill", "delete": "delete", "wait": "wait",
    "spec": "spec", "do": "do", "exec": "exec_", "ps": "ps", "events": "events",
    "features": "features", "version": "version", "plugins": "plugins",
    "pause": "pause", "resume": "resume",
}  # fmt: skip


class Context:
    """Global options and the lazily built runtime, shared by all commands."""

    def __init__(self, flags: dict[str, Any], config_path: str | None) -> None:
        self.flags = flags
        self.config_path = config_path
        self._settings = None
        self._runtime = None

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        if self._settings is None:
            from ..config import resolve

            self._settings = resolve(self.flags, self.config_path)
        return self._settings

    @property
    def store(self):  # type: ignore[no-untyped-def]
        from ..state import Store

        return Store(self.settings.root)

    @property
    def runtime(self):  # type: ignore[no-untyped-def]
        if self._runtime is None:
            from .. import pluginmanager as plugins
            from ..config import check_plugin_tables
            from ..lifecycle import Runtime

            manager = plugins.load()
            check_plugin_tables(self.settings, manager.config_tables)
            self._runtime = Runtime(self.settings, manager)
        return self._runtime


class StockadeGroup(click.Group):
    """Loads commands on use; reports StockadeError as one line with its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(name)
        if module_name is None:
            return None
        import importlib

        return importlib.import_module(f".{module_name}", __name__).command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StockadeError as exc:
            log.error("%s", exc)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            sys.exit(130)
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            # A bug or a failing plugin: one line by default, the traceback with --debug.
            log.debug("unexpected error", exc_info=True)
            log.error(
                "%s: %s (run with --debug for the traceback)", type(exc).__name__, exc
            )
            sys.exit(1)


@click.group(
    cls=StockadeGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--root",
    default=None,
    help="Directory for container state [default: /run/stockade].",
)
@click.option(
    "--log", "log_path", default=None, help="Also write log lines to this file."
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Format of the --log file [default: text].")  # fmt: skip
@click.option("--debug", is_flag=True, default=None, help="Log every lifecycle step.")
@click.option("--systemd-cgroup", is_flag=True, help="Accepted for runc compatibility.")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Stockade TOML config [default: $STOCKADE_CONFIG or /etc/stockade/config.toml].")  # fmt: skip
@click.option(
    "--platform", default=None, help="Platform that runs the application (ptrace)."
)
@click.option("--file-access", default=None, help="File-access mode (gofer, direct).")
@click.option("--network", default=None, help="Network mode (none, host).")
@click.version_option(__version__, "--version", "-v", prog_name="stockade",
                      message="%(prog)s version %(version)s\nspec: 1.0.2-dev")  # fmt: skip
@click.pass_context
def main(ctx: click.Context, root: str | None, log_path: str | None, log_format: str | None,
         debug: bool | None, systemd_cgroup: bool, config_path: str | None,
         platform: str | None, file_access: str | None, network: str | None) -> None:  # fmt: skip
    """Stockade: an OCI runtime that runs each container in a sandbox."""
    flags = {
        "root": root,
        "log": log_path,
        "log_format": log_format,
        "debug": debug,
        "platform": platform,
        "file_access": file_access,
        "network": network,
    }
    context = Context(flags, config_path)
    ctx.obj = context
    try:
        settings = context.settings
        configure_logging(settings.log, settings.log_format, settings.debug)
    except StockadeError as exc:
        try:
            configure_logging(log_path or "", log_format or "text", bool(debug))
        except StockadeError:
            configure_logging("", "text", bool(debug))  # the --log file itself failed
        log.error("%s", exc)
        sys.exit(exc.exit_code)

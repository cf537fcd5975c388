"""The exception hierarchy that every Stockade command reports from.

Messages that engines parse keep runc's wording: "container ... does not
exist", "container ... already exists", "container not running".
"""

from __future__ import annotations


class StockadeError(Exception):
    """A failure that the CLI reports as one line and a non-zero exit."""

    exit_code = 1


class InvalidIDError(StockadeError):
    pass


class NotFoundError(StockadeError):
    pass


class AlreadyExistsError(StockadeError):
    pass


class DamagedStateError(StockadeError):
    """A container's state.json cannot be read back."""


class WrongStatusError(StockadeError):
    """The container is not in a status that allows the operation."""


class SpecError(StockadeError):
    """The bundle's config.json is missing, malformed or requests what cannot be done."""


class ConfigError(StockadeError):
    """The Stockade TOML configuration or a command-line option is invalid."""


class PluginError(StockadeError):
    """A plugin failed to load, or two plugins provide the same name."""


class VetoError(StockadeError):
    """Raised by a plugin hook to stop a lifecycle step.

    The core aborts the step, destroys what it made, and reports the message.
    """


class SandboxError(StockadeError):
    """The sandbox process failed to boot or stopped responding."""


def container_not_found(container_id: str) -> NotFoundError:
    return NotFoundError(f"container {container_id} does not exist")


def container_not_running(container_id: str) -> WrongStatusError:
    return WrongStatusError(f"container not running: {container_id}")

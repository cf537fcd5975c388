"""Stockade's own settings: built-in defaults, a TOML file, the environment, flags.

Precedence, highest first: command-line flag, environment variable, config
file, default. The file is ``--config PATH``, else ``$STOCKADE_CONFIG``, else
``/etc/stockade/config.toml`` if it exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

DEFAULT_CONFIG_PATH = "/etc/stockade/config.toml"

# key -> (type, default, environment variable)
SETTINGS: dict[str, tuple[type, Any, str]] = {
    "platform": (str, "ptrace", "STOCKADE_PLATFORM"),
    "file_access": (str, "gofer", "STOCKADE_FILE_ACCESS"),
    "network": (str, "none", "STOCKADE_NETWORK"),
    "root": (str, "/run/stockade", "STOCKADE_ROOT"),
    "log": (str, "", "STOCKADE_LOG"),
    "log_format": (str, "text", "STOCKADE_LOG_FORMAT"),
    "debug": (bool, False, "STOCKADE_DEBUG"),
    "boot_timeout": (float, 30.0, "STOCKADE_BOOT_TIMEOUT"),
}
LOG_FORMATS = ("text", "json")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


@dataclass
class Settings:
    platform: str = "ptrace"
    file_access: str = "gofer"
    network: str = "none"
    root: str = "/run/stockade"
    log: str = ""
    log_format: str = "text"
    debug: bool = False
    boot_timeout: float = 30.0
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_path: str | None = None
    # key -> "flag" | "environment" | path of the file | "default"
    origin: dict[str, str] = field(default_factory=dict)

    def plugin_table(self, name: str) -> dict[str, Any]:
        return self.plugins.get(name, {})


def resolve(
    flags: Mapping[str, Any],
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, the config file, the environment and FLAGS (None = not given)."""
    env = os.environ if environ is None else environ
    settings = Settings()
    settings.origin = {key: "default" for key in SETTINGS}

    path = config_path or env.get("STOCKADE_CONFIG") or None
    if path is None and os.path.exists(DEFAULT_CONFIG_PATH):
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        _apply_file(settings, path)

    for key, (kind, _, variable) in SETTINGS.items():
        if variable in env and env[variable] != "":
            value = _parse_env(variable, env[variable], kind)
            setattr(settings, key, value)
            settings.origin[key] = "environment"
    for key, value in flags.items():
        if value is not None and key in SETTINGS:
            setattr(settings, key, value)
            settings.origin[key] = "flag"

    if not 0 < settings.boot_timeout < 3600:  # also false for nan
        raise ConfigError(
            f"invalid boot_timeout {settings.boot_timeout!r} "
            f"(from {settings.origin['boot_timeout']}): use a number of seconds from 1 to 3600"
        )
    if settings.log_format not in LOG_FORMATS:
        raise ConfigError(
            f"invalid log format {settings.log_format!r} "
            f"(from {settings.origin['log_format']}): use text or json"
        )
    return settings


def _apply_file(settings: Settings, path: str) -> None:
    import tomllib  # only when there is a file: every command starts here

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found: fix --config or STOCKADE_CONFIG"
        )
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}")

    settings.config_path = path
    for key, value in data.items():
        if key == "plugins":
            settings.plugins = _plugin_tables(path, value)
            continue
        if key not in SETTINGS:
            valid = ", ".join([*SETTINGS, "plugins"])
            raise ConfigError(f"{path}: unknown key {key!r}; valid keys are {valid}")
        kind = SETTINGS[key][0]
        setattr(settings, key, _check_type(path, key, value, kind))
        settings.origin[key] = path


def _plugin_tables(path: str, value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not all(
        isinstance(v, dict) for v in value.values()
    ):
        raise ConfigError(
            f"{path}: 'plugins' must hold one table per plugin, [plugins.NAME]"
        )
    return value


def check_plugin_tables(
    settings: Settings, schema: Mapping[str, Mapping[str, type]]
) -> None:
    """Check each [plugins.NAME] table against the keys its plugin declares."""
    path = settings.config_path or "config"
    for table, values in settings.plugins.items():
        keys = schema.get(table)
        if keys is None:
            valid = ", ".join(sorted(schema)) or "none"
            raise ConfigError(
                f"{path}: unknown table [plugins.{table}]; tables of loaded plugins: {valid}"
            )
        for key, value in values.items():
            if key not in keys:
                valid = ", ".join(sorted(keys))
                raise ConfigError(
                    f"{path}: unknown key {key!r} in [plugins.{table}]; valid keys are {valid}"
                )
            _check_type(path, f"plugins.{table}.{key}", value, keys[key])


def _check_type(path: str, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(
            f"{path}: key {key!r} must be a {kind.__name__}, not "
            f"{type(value).__name__} {value!r}"
        )
    return value


def _parse_env(variable: str, raw: str, kind: type) -> Any:
    if kind is bool:
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigError(f"{variable}={raw!r} is not a boolean: use 1 or 0")
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{variable}={raw!r} is not a number")
    return raw

"""Load plugins from entry points and look up the providers they declare.

Built-in plugins and third-party plugins load the same way: from the
``stockade.plugins`` entry-point group. Setting ``STOCKADE_DISABLE_EXTERNAL_PLUGINS=1``
loads only the plugins that the ``stockade`` distribution itself registers.
``STOCKADE_TRACE_HOOKS=1`` writes every hook call and result to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import ConfigError, PluginError, StockadeError
from .providers import KINDS, Container, Provider

ENTRY_POINT_GROUP = "stockade.plugins"
DISTRIBUTION = "stockade"


@dataclass
class LoadedPlugin:
    name: str
    distribution: str
    version: str
    external: bool


class PluginManager:
    """A typed facade over pluggy: one method per lifecycle hook."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.hook = pm.hook
        self.loaded: list[LoadedPlugin] = []
        self.providers: dict[str, dict[str, Provider]] = {kind: {} for kind in KINDS}
        self._owners: dict[tuple[str, str], str] = {}
        self.config_tables: dict[str, dict[str, type]] = {}

    # --- lookup ------------------------------------------------------------

    def provider(self, kind: str, name: str, origin: str = "") -> Any:
        """Return the provider of KIND called NAME, or raise listing the valid names.

        ORIGIN names where NAME came from ("flag", "environment", a config file).
        """
        found = self.providers[kind].get(name)
        if found is None:
            valid = ", ".join(sorted(self.providers[kind])) or "none loaded"
            option = "--" + kind.replace("_", "-")
            subject = {
                "flag": f"{option} {name!r}",
                "environment": f"{kind} {name!r} from STOCKADE_{kind.upper()}",
                "default": f"default {kind} {name!r}",
                "": f"{option} {name!r}",
            }.get(origin, f"{kind} {name!r} in {origin}")
            raise ConfigError(f"unknown {subject}: valid values are {valid}")
        return found

    def owner(self, kind: str, name: str) -> str:
        return self._owners[(kind, name)]

    # --- lifecycle ---------------------------------------------------------

    def pre_create(self, container: Container) -> None:
        self.hook.stockade_pre_create(container=container)

    def namespaces(self, container: Container) -> None:
        self.hook.stockade_namespaces(
            container=container, namespaces=container.namespaces
        )

    def file_access(self, container: Container) -> None:
        self.hook.stockade_file_access(container=container)

    def network(self, container: Container) -> None:
        self.hook.stockade_network(container=container)

    def start(self, container: Container) -> None:
        self.hook.stockade_start(container=container)

    def teardown(self, container: Container, hook_names: tuple[str, ...]) -> list[str]:
        """Call every implementation of HOOK_NAMES in order; return the errors, never raise."""
        errors = []
        for hook_name in hook_names:
            caller = getattr(self.hook, hook_name)
            for impl in reversed(caller.get_hookimpls()):
                if impl.wrapper or impl.hookwrapper:
                    continue  # a teardown has no single call to wrap
                try:
                    impl.function(container=container)
                except Exception as exc:  # every plugin gets its turn
                    errors.append(f"{hook_name} in plugin {impl.plugin_name}: {exc}")
        return errors

    # --- loading -------------------------------------------------------------

    def collect_providers(self) -> None:
        for impl in self.hook.stockade_providers.get_hookimpls():
            for provider in impl.function() or ():
                self._add_provider(provider, impl.plugin_name)
        for tables in self.hook.stockade_config_tables():
            self.config_tables.update(tables)

    def _add_provider(self, provider: Provider, plugin_name: str) -> None:
        kind = getattr(provider, "kind", None)
        if kind not in KINDS:
            raise PluginError(
                f"plugin {plugin_name} declares provider {provider!r} of unknown kind "
                f"{kind!r}: the kind must be one of {', '.join(KINDS)}"
            )
        key = (kind, provider.name)
        if key in self._owners:
            raise PluginError(
                f"{kind} {provider.name!r} is provided by two plugins: "
                f"{self._owners[key]} and {plugin_name}; uninstall one of them or "
                f"set STOCKADE_DISABLE_EXTERNAL_PLUGINS=1"
            )
        self._owners[key] = plugin_name
        self.providers[kind][provider.name] = provider

    def iter_plugins(self) -> Iterator[tuple[LoadedPlugin, list[Provider]]]:
        for plugin in self.loaded:
            provided = [
                self.providers[kind][name]
                for (kind, name), owner in self._owners.items()
                if owner == plugin.name
            ]
            yield plugin, provided


@dataclass
class EntryPoint:
    name: str
    value: str
    distribution: str
    version: str

    def load(self) -> Any:
        module_name, _, attribute = self.value.partition(":")
        target: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attribute.strip().split(".")):
            target = getattr(target, part)
        return target


def find_entry_points(group: str) -> list[EntryPoint]:
    """Read GROUP's entry points from the ``*.dist-info`` folders on sys.path.

    This reads the same ``entry_points.txt`` files as importlib.metadata, without
    importing it: that import alone costs about 15 ms, and every command pays it.
    """
    found = []
    for directory in sys.path:
        try:
            names = os.listdir(directory or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                found += _read_entry_points(os.path.join(directory, name), group)
    return found


def _read_entry_points(dist_info: str, group: str) -> list[EntryPoint]:
    try:
        with open(os.path.join(dist_info, "entry_points.txt"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    distribution, _, version = os.path.basename(dist_info)[
        : -len(".dist-info")
    ].partition("-")
    distribution = distribution.replace("_", "-").lower()
    entries, section = [], None
    for line in lines:
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            entries.append(
                EntryPoint(key.strip(), value.strip(), distribution, version)
            )
    return entries


def _external_disabled() -> bool:
    return os.environ.get("STOCKADE_DISABLE_EXTERNAL_PLUGINS", "") not in ("", "0")


def load(extra: list[object] | None = None) -> PluginManager:
    """Build the plugin manager: the core's own plugin, then every entry point."""
    from . import lifecycle_impl

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(lifecycle_impl, name="stockade.core")
    manager = PluginManager(pm)
    skip_external = _external_disabled()

    for entry_point in find_entry_points(ENTRY_POINT_GROUP):
        external = entry_point.distribution != DISTRIBUTION
        if external and skip_external:
            continue
        if pm.has_plugin(entry_point.name):
            raise PluginError(
                f"two plugins are registered under the name {entry_point.name!r} "
                f"(one from {entry_point.distribution}); uninstall one of them"
            )
        try:
            pm.register(entry_point.load(), name=entry_point.name)
        except StockadeError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {entry_point.name!r} from {entry_point.distribution} failed to "
                f"load: {exc}; set STOCKADE_DISABLE_EXTERNAL_PLUGINS=1 to run without "
                f"external plugins"
            ) from exc
        manager.loaded.append(
            LoadedPlugin(
                entry_point.name,
                entry_point.distribution,
                entry_point.version,
                external,
            )
        )

    for plugin in extra or ():
        pm.register(plugin)
    if os.environ.get("STOCKADE_TRACE_HOOKS", "") not in ("", "0"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    manager.collect_providers()
    return manager

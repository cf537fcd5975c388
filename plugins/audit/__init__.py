"""The audit plugin: one JSON line per mediated system call of the application.

Turn it on in the Stockade config::

    [plugins.audit]
    path = "/var/log/stockade-audit.jsonl"

Each line has ``time`` (UTC, ISO 8601), ``container``, ``pid`` (inside the
sandbox's PID namespace, so not the pid the application sees in its own
nested namespace), ``syscall``, ``args`` (paths and socket addresses
decoded) and ``result`` (a negative errno on failure). The file is opened in
the sandbox before it leaves the host's file system. Without ``path`` the plugin
requests no syscall hook, so it costs the application nothing.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, TextIO

from stockade.hookspecs import hookimpl

TABLE = "audit"
_logs: dict[str, TextIO] = {}


@hookimpl
def stockade_config_tables():  # type: ignore[no-untyped-def]
    return {TABLE: {"path": str}}


@hookimpl
def stockade_sandbox_prepare(container):  # type: ignore[no-untyped-def]
    path = container.settings.plugin_table(TABLE).get("path")
    if not path:
        return []
    _logs[container.id] = open(path, "a", buffering=1)
    return ["stockade_syscall_result"]


@hookimpl
def stockade_syscall_result(container, call, result):  # type: ignore[no-untyped-def]
    log = _logs.get(container.id)
    if log is None:
        return
    record: dict[str, Any] = {
        "time": datetime.datetime.now(datetime.UTC).isoformat(),
        "container": container.id,
        **call.to_json(),
        "result": result,
    }
    log.write(json.dumps(record) + "\n")

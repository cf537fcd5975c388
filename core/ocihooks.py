"""OCI lifecycle hooks from config.json: where and when each kind runs.

From the OCI runtime specification (config.md, "POSIX-platform Hooks"):

- ``prestart`` and ``createRuntime`` run in the runtime's namespaces during
  create, after the container's namespaces exist and before pivot_root;
- ``createContainer`` runs in the container's namespaces at the same point;
- ``startContainer`` runs in the container's namespaces during start, before
  the user process executes, with a path that resolves in the container;
- ``poststart`` runs in the runtime's namespaces after the user process starts;
- ``poststop`` runs in the runtime's namespaces after the container is deleted.

Each hook gets the container's state JSON on stdin. A failure of one of the
first four kinds fails the operation, and create then destroys the container.
A failure of poststart or poststop is logged as a warning and ignored.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from typing import Any

from .errors import SpecError, StockadeError

log = logging.getLogger("stockade")

FATAL = ("prestart", "createRuntime", "createContainer", "startContainer")
CREATE_KINDS = ("prestart", "createRuntime", "createContainer")
KINDS = (*FATAL, "poststart", "poststop")


class HookError(StockadeError):
    pass


def hooks_of(spec_raw: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return list((spec_raw.get("hooks") or {}).get(kind) or [])


def check(spec_raw: dict[str, Any], where: str) -> None:
    """Reject malformed hook entries before anything runs."""
    hooks = spec_raw.get("hooks") or {}
    if not isinstance(hooks, dict):
        raise SpecError(f"{where}: hooks must be a JSON object")
    for kind, entries in hooks.items():
        if kind not in KINDS:
            raise SpecError(
                f"{where}: unknown hook kind {kind!r}; valid kinds are {', '.join(KINDS)}"
            )
        if not isinstance(entries, list):
            raise SpecError(f"{where}: hooks.{kind} must be a list")
        for index, hook in enumerate(entries):
            name = f"hooks.{kind}[{index}]"
            if not isinstance(hook, dict) or not isinstance(hook.get("path"), str):
                raise SpecError(f"{where}: {name} needs a string path")
            if not os.path.isabs(hook["path"]):
                raise SpecError(
                    f"{where}: {name}.path {hook['path']!r} must be absolute"
                )
            timeout = hook.get("timeout")
            if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
                raise SpecError(f"{where}: {name}.timeout must be a positive integer")


def run(spec_raw: dict[str, Any], kind: str, state: dict[str, Any]) -> None:
    """Run the hooks of KIND in order; raise HookError if a fatal one fails."""
    for index, hook in enumerate(hooks_of(spec_raw, kind)):
        try:
            _run_one(hook, state)
        except HookError as exc:
            message = f"{kind} hook {index} ({hook['path']}) failed: {exc}"
            if kind in FATAL:
                raise HookError(message) from None
            log.warning("container %s: %s", state.get("id"), message)


def _run_one(hook: dict[str, Any], state: dict[str, Any]) -> None:
    args = hook.get("args") or [hook["path"]]
    env = dict(item.split("=", 1) for item in hook.get("env") or [] if "=" in item)
    try:
        completed = subprocess.run(
            args,
            executable=hook["path"],
            input=json.dumps(state).encode(),
            env=env,
            timeout=hook.get("timeout"),
            capture_output=True,
            close_fds=True,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise HookError(f"timed out after {hook['timeout']}s") from None
    except OSError as exc:
        raise HookError(exc.strerror or str(exc)) from None
    if completed.returncode != 0:
        detail = completed.stderr.decode(errors="replace").strip()[-300:]
        raise HookError(
            f"exit status {completed.returncode}" + (f": {detail}" if detail else "")
        )

"""`stockade exec`: run another process inside a running container."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import ConfigError, SpecError
from ..spec import MAX_ID
from .options import container_id


@click.command("exec", context_settings={"allow_interspersed_args": False})
@click.option(
    "--process",
    "-p",
    "process_file",
    default=None,
    help="JSON file with the OCI process to run; replaces COMMAND and the options.",
)
@click.option(
    "--detach",
    "-d",
    is_flag=True,
    help="Return once the process has started; --pid-file names a waiter "
    "that exits with the process's status.",
)
@click.option("--pid-file", default=None, help="Write the pid to reap to this file.")
@click.option("--cwd", default=None, help="Working directory inside the container.")
@click.option(
    "--env", "-e", multiple=True, help="NAME=VALUE to add to the environment."
)
@click.option("--user", "-u", default=None, help="UID[:GID] to run as.")
@click.option(
    "--additional-gids", "-g", multiple=True, type=int, help="Extra group id."
)
@click.option("--cap", "-c", multiple=True, help="Capability to add, such as CAP_KILL.")
@click.option("--no-new-privs", is_flag=True, help="Set no_new_privs for the process.")
@click.option(
    "--tty",
    "-t",
    is_flag=True,
    help="Give the process a terminal; its master goes to --console-socket.",
)
@click.option(
    "--console-socket",
    default=None,
    help="Unix socket that receives the terminal's master fd.",
)
@click.option("--preserve-fds", type=int, default=0, help="Accepted; must be 0.")
@click.option("--process-label", default=None, hidden=True)
@click.option("--apparmor", default=None, hidden=True)
@click.option("--ignore-paused", is_flag=True, hidden=True)
@container_id
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def command(obj, process_file, detach, pid_file, cwd, env, user, additional_gids, cap,  # type: ignore[no-untyped-def]
            no_new_privs, tty, console_socket, preserve_fds, process_label, apparmor,
            ignore_paused, container_id, command):  # fmt: skip
    """Run a process inside a running container; exit with its exit status."""
    if preserve_fds:
        raise ConfigError(f"--preserve-fds={preserve_fds} is not supported yet; pass 0")
    runtime = obj.runtime
    if process_file:
        process = _load_process(process_file)
    else:
        if not command:
            raise ConfigError("exec needs a COMMAND, or --process FILE")
        _, container = runtime.load(container_id)
        process = dict(container.spec.process)
        process["args"] = list(command)
        _apply_options(process, cwd, env, user, additional_gids, cap, no_new_privs)
    if tty:
        process["terminal"] = True
    code = runtime.exec(
        container_id,
        process,
        detach=detach,
        pid_file=pid_file,
        console_socket=console_socket,
    )
    sys.exit(code)


def _load_process(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            process = json.load(f)
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read the exec process from {path}: {exc}") from None
    if not isinstance(process, dict):
        raise SpecError(f"{path}: the exec process must be a JSON object")
    return process


def _apply_options(
    process: dict[str, Any], cwd, env, user, groups, caps, no_new_privs
) -> None:  # type: ignore[no-untyped-def]
    process["terminal"] = False  # --tty sets it
    if cwd:
        if not cwd.startswith("/"):
            raise ConfigError(
                f"invalid --cwd {cwd!r}: pass an absolute path inside the container"
            )
        process["cwd"] = cwd
    if env:
        process["env"] = list(process.get("env") or []) + list(env)
    if user:
        process["user"] = _parse_user(user)
    for gid in groups:
        if not 0 <= gid < MAX_ID:
            raise ConfigError(
                f"invalid --additional-gids {gid}: a group id must be from 0 to "
                f"{MAX_ID - 1}"
            )
    if groups:
        process.setdefault("user", {})["additionalGids"] = list(groups)
    if caps:
        capabilities = dict(process.get("capabilities") or {})
        for name in ("bounding", "effective", "permitted", "ambient"):
            capabilities[name] = sorted(set(capabilities.get(name) or []) | set(caps))
        process["capabilities"] = capabilities
    if no_new_privs:
        process["noNewPrivileges"] = True


def _parse_user(user: str) -> dict[str, int]:
    """Parse --user UID[:GID] into process.user; GID defaults to 0, as in runc."""
    uid_text, _, gid_text = user.partition(":")
    try:
        uid, gid = int(uid_text), int(gid_text or 0)
    except ValueError:
        raise ConfigError(f"invalid --user {user!r}: use UID or UID:GID") from None
    # MAX_ID is (uid_t)-1, which setresuid reads as "leave unchanged".
    if not (0 <= uid < MAX_ID and 0 <= gid < MAX_ID):
        raise ConfigError(
            f"invalid --user {user!r}: the uid and gid must be from 0 to {MAX_ID - 1}"
        )
    return {"uid": uid, "gid": gid}

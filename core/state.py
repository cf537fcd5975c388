"""Container ids and the on-disk state of each container.

``<root>/<id>/`` contains ``state.json`` and a ``lock`` file. Every
read-modify-write of the state happens under an exclusive ``flock`` on the
lock file; the document is written to a temporary file, fsynced and renamed
over the old one, so a reader sees either the old or the new state, never a
mix. ``mkdir`` of the directory is what makes ``create`` of an id exclusive.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from . import linux
from .errors import (
    AlreadyExistsError,
    ConfigError,
    DamagedStateError,
    InvalidIDError,
    container_not_found,
)
from .spec import OCI_VERSION

ID_PATTERN = re.compile(r"[A-Za-z0-9_+.-]+")
MAX_ID_LENGTH = 200
STATE_FILE = "state.json"
LOCK_FILE = "lock"
CONTROL_SOCKET = "control.sock"
EXIT_FILE = "exit.json"
# The fault inside a running sandbox, written by the sandbox itself.
# `state` shows it as the annotation stockade.problem.
PROBLEM_FILE = "problem.txt"

CREATING, CREATED, RUNNING, STOPPED = "creating", "created", "running", "stopped"
PAUSED = "paused"


def validate_id(container_id: str) -> str:
    """Reject ids that are not plain file names, before they touch the disk."""
    if not container_id:
        raise InvalidIDError("invalid container id '': the id must not be empty")
    if len(container_id) > MAX_ID_LENGTH:
        raise InvalidIDError(
            f"invalid container id {container_id[:40]!r}...: {len(container_id)} characters, "
            f"the maximum is {MAX_ID_LENGTH}"
        )
    if container_id in (".", "..") or not ID_PATTERN.fullmatch(container_id):
        raise InvalidIDError(
            f"invalid container id {container_id!r}: use only letters, digits and _ + . -, "
            f"and not '.' or '..'"
        )
    return container_id


@dataclass
class State:
    """The saved state of one container, kept between commands."""

    id: str
    bundle: str
    rootfs: str
    status: str
    created: str
    pid: int = 0
    pid_start_time: int = 0
    annotations: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    namespaces: list[dict[str, Any]] = field(default_factory=list)
    plugin_state: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    cgroup: str = ""  # relative to each hierarchy root; "" when there is none
    owner: str = ""
    problem: str = ""  # from PROBLEM_FILE when loaded; never saved with a value

    def sandbox_alive(self) -> bool:
        """Return whether the sandbox process still runs; a reused pid does not count."""
        if self.pid <= 0:
            return False
        return linux.process_start_time(self.pid) == self.pid_start_time

    def current_status(self) -> str:
        if self.status == CREATING:
            return CREATING if self.sandbox_alive() else STOPPED
        if self.status in (CREATED, RUNNING, PAUSED) and not self.sandbox_alive():
            return STOPPED
        return self.status

    def oci(self) -> dict[str, Any]:
        """Return the state document of the OCI runtime specification."""
        status = self.current_status()
        document: dict[str, Any] = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.pid if status != STOPPED else 0,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        }
        annotations = dict(self.annotations)
        if self.problem:
            annotations["stockade.problem"] = self.problem
        if annotations:
            document["annotations"] = annotations
        return document


def now() -> str:
    seconds = time.time()
    fraction = f"{seconds % 1:.6f}"[1:]
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + fraction + "Z"


class Store:
    """The state directories under one root."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def path(self, container_id: str) -> str:
        return os.path.join(self.root, validate_id(container_id))

    def reserve(self, container_id: str) -> str:
        """Create the state directory of a new container, or raise if the id is taken."""
        path = self.path(container_id)
        try:
            os.makedirs(self.root, mode=0o711, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot use --root {self.root}: {exc.strerror}; it must be a directory"
            ) from None
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise AlreadyExistsError(f"container with id {container_id} already exists")
        return path

    def exists(self, container_id: str) -> bool:
        return os.path.isfile(os.path.join(self.path(container_id), STATE_FILE))

    @contextlib.contextmanager
    def locked(self, container_id: str) -> Iterator[str]:
        """Hold the container's lock; raise 'does not exist' if it has no state."""
        path = self.path(container_id)
        try:
            fd = os.open(
                os.path.join(path, LOCK_FILE),
                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                0o600,
            )
        except (FileNotFoundError, NotADirectoryError):
            raise container_not_found(container_id)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A concurrent delete may have removed the directory while we waited.
            if not os.path.exists(os.path.join(path, STATE_FILE)) and not os.path.isdir(
                path
            ):
                raise container_not_found(container_id)
            yield path
        finally:
            os.close(fd)

    def load(self, container_id: str) -> State:
        path = os.path.join(self.path(container_id), STATE_FILE)
        try:
            with open(path, "rb") as f:
                data = json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            raise container_not_found(container_id)
        except (OSError, ValueError) as exc:
            raise DamagedStateError(
                f"state of container {container_id} in {path} is damaged ({exc}); "
                f"delete --force removes it"
            ) from None
        try:
            state = State(**data)
        except TypeError as exc:
            raise DamagedStateError(
                f"state of container {container_id} in {path} is damaged ({exc}); "
                f"delete --force removes it"
            ) from None
        try:
            with open(os.path.join(self.path(container_id), PROBLEM_FILE)) as f:
                state.problem = f.read(4096).strip()
        except OSError:
            pass
        return state

    def save(self, state: State) -> None:
        directory = self.path(state.id)
        record = asdict(state)
        record["problem"] = ""
        write_atomic(os.path.join(directory, STATE_FILE), json.dumps(record))

    def remove(self, container_id: str) -> None:
        import shutil  # only delete needs it

        shutil.rmtree(self.path(container_id), ignore_errors=True)

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(
            n for n in names if os.path.isfile(os.path.join(self.root, n, STATE_FILE))
        )


def write_atomic(path: str, text: str, mode: int = 0o644) -> None:
    """Write TEXT to PATH through a temporary file, fsync and rename."""
    directory = os.path.dirname(path) or "."
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temporary, path)

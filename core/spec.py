"""Read and check an OCI bundle's config.json.

Only the fields Stockade acts on are checked here; the rest is kept as given
so that hooks and plugins can read it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from .errors import SpecError

OCI_VERSION = "1.0.2-dev"
NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")


@dataclass
class Spec:
    raw: dict[str, Any]
    bundle: str

    @property
    def process(self) -> dict[str, Any]:
        return self.raw.get("process") or {}

    @property
    def args(self) -> list[str]:
        return self.process.get("args") or []

    @property
    def root_path(self) -> str:
        path = (self.raw.get("root") or {}).get("path", "rootfs")
        return os.path.normpath(os.path.join(self.bundle, path))

    @property
    def root_readonly(self) -> bool:
        return bool((self.raw.get("root") or {}).get("readonly", False))

    @property
    def mounts(self) -> list[dict[str, Any]]:
        return self.raw.get("mounts") or []

    @property
    def linux(self) -> dict[str, Any]:
        return self.raw.get("linux") or {}

    @property
    def hostname(self) -> str:
        return self.raw.get("hostname") or ""

    @property
    def annotations(self) -> dict[str, str]:
        return self.raw.get("annotations") or {}


def load(bundle: str) -> Spec:
    """Load BUNDLE/config.json and check what the runtime needs from it."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise SpecError(f"{path} not found: pass the bundle directory with --bundle")
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path} is not valid JSON: {exc}")
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: the top level must be a JSON object")
    spec = Spec(raw=raw, bundle=bundle)
    check(spec, path)
    return spec


def check(spec: Spec, where: str) -> None:
    if "ociVersion" not in spec.raw:
        raise SpecError(f"{where}: missing ociVersion")
    check_process(spec.process, where)
    if not os.path.isdir(spec.root_path):
        raise SpecError(
            f"{where}: root.path {spec.root_path} is not a directory: "
            f"unpack the root file system there or fix root.path"
        )
    for index, mount in enumerate(spec.mounts):
        destination = mount.get("destination")
        if not isinstance(destination, str) or not destination.startswith("/"):
            raise SpecError(
                f"{where}: mounts[{index}].destination {destination!r} must be an absolute path"
            )
    for entry in spec.linux.get("namespaces") or []:
        if entry.get("type") not in NAMESPACE_TYPES:
            raise SpecError(
                f"{where}: unknown namespace type {entry.get('type')!r}; "
                f"valid types are {', '.join(NAMESPACE_TYPES)}"
            )


def check_process(process: dict[str, Any], where: str) -> None:
    args = process.get("args")
    if (
        not isinstance(args, list)
        or not args
        or not all(isinstance(a, str) for a in args)
    ):
        raise SpecError(f"{where}: process.args must be a non-empty list of strings")
    cwd = process.get("cwd", "/")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise SpecError(f"{where}: process.cwd {cwd!r} must be an absolute path")
    env = process.get("env") or []
    if not all(isinstance(item, str) and "=" in item for item in env):
        raise SpecError(f"{where}: process.env entries must be NAME=VALUE strings")
    user = process.get("user") or {}
    for key in ("uid", "gid"):
        value = user.get(key, 0)
        if not isinstance(value, int) or value < 0:
            raise SpecError(
                f"{where}: process.user.{key} {value!r} must be a non-negative integer"
            )


def default(args: list[str] | None = None, terminal: bool = False) -> dict[str, Any]:
    """Return the config.json that ``stockade spec`` writes: runc's defaults."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args or ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "stockade",
        "mounts": default_mounts(),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    }  # fmt: skip


def default_mounts() -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
    ]

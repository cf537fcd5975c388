"""Read and check an OCI bundle's config.json.

Only the fields Stockade acts on are checked here; the rest is kept as given
so that hooks and plugins can read it.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from typing import Any

from .errors import SpecError

OCI_VERSION = "1.0.2-dev"
NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
# Each type's name under /proc/PID/ns and the CLONE_NEW* flag that NS_GET_NSTYPE returns.
NAMESPACE_FILES = {
    "pid": ("pid", 0x20000000), "network": ("net", 0x40000000),
    "mount": ("mnt", 0x00020000), "ipc": ("ipc", 0x08000000),
    "uts": ("uts", 0x04000000), "user": ("user", 0x10000000),
    "cgroup": ("cgroup", 0x02000000), "time": ("time", 0x00000080),
}  # fmt: skip
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)


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


# Where a field is present, it must have this type; "[]" means "a list of".
SHAPES: dict[str, Any] = {
    "ociVersion": str,
    "process": dict,
    "process.terminal": bool,
    "process.env": [str],
    "process.user": dict,
    "process.user.additionalGids": [int],
    "process.capabilities": dict,
    "process.rlimits": [dict],
    "process.noNewPrivileges": bool,
    "root": dict,
    "root.path": str,
    "root.readonly": bool,
    "hostname": str,
    "domainname": str,
    "mounts": [dict],
    "annotations": dict,
    "linux": dict,
    "linux.namespaces": [dict],
    "linux.uidMappings": [dict],
    "linux.gidMappings": [dict],
    "linux.maskedPaths": [str],
    "linux.readonlyPaths": [str],
    "linux.sysctl": dict,
    "linux.devices": [dict],
    "linux.resources": dict,
    "linux.resources.devices": [dict],
    "process.oomScoreAdj": int,
}
CAPABILITY_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
# Sections of config.json that this version reads but does not apply yet. create
# logs a warning that names each one present. linux.resources.devices is not
# listed because it is applied wherever the host has a v1 devices cgroup, and
# the cgroup code reports where it is not.
NOT_APPLIED: tuple[str, ...] = ()
DEVICE_TYPES = ("a", "b", "c")
DEVICE_ACCESS = frozenset("rwm")
MAX_ID = 4294967295


def check_shapes(raw: dict[str, Any], where: str) -> None:
    """Reject fields of the wrong JSON type, naming the field and what it must be."""
    for key, shape in SHAPES.items():
        value = lookup(raw, key)
        if value is None:
            continue
        if isinstance(shape, list):
            item_type = shape[0]
            if not isinstance(value, list) or not all(_is(v, item_type) for v in value):
                raise SpecError(f"{where}: {key} must be a list of {_name(item_type)}s")
        elif not _is(value, shape):
            raise SpecError(
                f"{where}: {key} must be a {_name(shape)}, not {_name(type(value))} {value!r}"
            )
    for name in CAPABILITY_SETS:
        value = lookup(raw, f"process.capabilities.{name}")
        if value is not None and not (
            isinstance(value, list) and all(isinstance(c, str) for c in value)
        ):
            raise SpecError(
                f"{where}: process.capabilities.{name} must be a list of strings"
            )
    for index, limit in enumerate(lookup(raw, "process.rlimits") or []):
        if not all(_is(limit.get(k), int) for k in ("soft", "hard")):
            raise SpecError(
                f"{where}: process.rlimits[{index}] needs integer soft and hard"
            )
    for key in ("linux.uidMappings", "linux.gidMappings"):
        for index, mapping in enumerate(lookup(raw, key) or []):
            fields = ("containerID", "hostID", "size")
            if not all(_is(mapping.get(k), int) for k in fields):
                raise SpecError(
                    f"{where}: {key}[{index}] needs integer {', '.join(fields)}"
                )
    annotations = raw.get("annotations") or {}
    if not all(isinstance(v, str) for v in annotations.values()):
        raise SpecError(f"{where}: annotations values must be strings")


def lookup(raw: dict[str, Any], dotted: str) -> Any:
    value: Any = raw
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def not_applied(raw: dict[str, Any], keys: tuple[str, ...] = NOT_APPLIED) -> list[str]:
    """Return the sections of RAW among KEYS that are set but not applied yet."""
    return [key for key in keys if lookup(raw, key)]


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _name(kind: type) -> str:
    return {dict: "JSON object", list: "JSON array", str: "string", int: "integer",
            bool: "boolean"}.get(kind, kind.__name__)  # fmt: skip


def check(spec: Spec, where: str) -> None:
    from . import ocihooks

    check_shapes(spec.raw, where)
    ocihooks.check(spec.raw, where)
    if "seccomp" in spec.linux:
        from .sentry import oci_seccomp

        oci_seccomp.check(spec.linux["seccomp"], where)
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
    check_device_rules(lookup(spec.raw, "linux.resources.devices") or [], where)
    for entry in spec.linux.get("namespaces") or []:
        if entry.get("type") not in NAMESPACE_TYPES:
            raise SpecError(
                f"{where}: unknown namespace type {entry.get('type')!r}; "
                f"valid types are {', '.join(NAMESPACE_TYPES)}"
            )
        if entry.get("path"):
            check_namespace_path(entry["type"], entry["path"], where)


def check_namespace_path(kind: str, path: Any, where: str) -> None:
    """Reject a namespace PATH that is not a namespace of type KIND.

    The sandbox would otherwise fail in setns(2) with a bare EINVAL or ENOENT.
    """
    name, flag = NAMESPACE_FILES[kind]
    label = f"{where}: linux.namespaces {kind} path {path}"
    example = f"/proc/PID/ns/{name} of a running process"
    if not isinstance(path, str) or not path.startswith("/"):
        raise SpecError(f"{label} must be an absolute path, such as {example}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SpecError(f"{label} does not exist: name {example}") from None
    except OSError as exc:
        raise SpecError(f"{label} cannot be opened ({exc.strerror}): name {example}") from None
    try:
        found = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        raise SpecError(f"{label} is not a namespace: name {example}") from None
    finally:
        os.close(fd)
    if found != flag:
        other = next(
            (other_kind for other_kind, (_, other_flag) in NAMESPACE_FILES.items()
             if other_flag == found),
            "another",
        )  # fmt: skip
        raise SpecError(f"{label} is a {other} namespace, not a {kind} one: name {example}")


def check_device_rules(rules: list[dict[str, Any]], where: str) -> None:
    """Reject linux.resources.devices entries that the device cgroup cannot apply.

    The rules are replayed from deny-all, the way they are written, because a
    v1 device cgroup ignores, without an error, a rule that would punch a hole
    in a wildcard rule of the opposite kind ("deny c 10:229" after "allow
    c *:*"). runc rejects such a list too.
    """
    default_allow = False
    exceptions: dict[tuple[str, int, int], set[str]] = {}
    for index, rule in enumerate(rules):
        key = f"linux.resources.devices[{index}]"
        kind, major, minor, access = _device_rule_fields(rule, f"{where}: {key}")
        if kind == "a":
            default_allow, exceptions = bool(rule["allow"]), {}
            continue
        if rule["allow"] == default_allow:
            # Opposite to the default: this removes access from an exception.
            for wildcard in ((kind, -1, minor), (kind, major, -1), (kind, -1, -1)):
                overlap = exceptions.get(wildcard, set()) & access
                if wildcard != (kind, major, minor) and overlap:
                    raise SpecError(
                        f"{where}: {key} cannot take {''.join(sorted(overlap))} "
                        f"access from part of an earlier wildcard rule, because the "
                        f"device cgroup would ignore it: replace the wildcard rule "
                        f"with narrower rules that leave this device out"
                    )
            remaining = exceptions.get((kind, major, minor), set()) - access
            exceptions[(kind, major, minor)] = remaining
        else:
            exceptions.setdefault((kind, major, minor), set()).update(access)


def _device_rule_fields(
    rule: dict[str, Any], where: str
) -> tuple[str, int, int, set[str]]:
    """Check one device cgroup rule and return its type, major, minor and access.

    A major or minor of -1 means every number.
    """
    if not isinstance(rule.get("allow"), bool):
        raise SpecError(f"{where}.allow must be true or false")
    kind = rule.get("type") or "a"
    if kind not in DEVICE_TYPES:
        raise SpecError(
            f"{where}.type {kind!r} is not a device cgroup type: use a, b or c"
        )
    numbers = []
    for name in ("major", "minor"):
        value = rule.get(name, -1)
        if not _is(value, int) or value < -1 or value >= MAX_ID:
            raise SpecError(
                f"{where}.{name} {value!r} must be an integer from 0 to {MAX_ID - 1}, "
                f"or absent for every number"
            )
        numbers.append(value)
    access = rule.get("access")
    if not isinstance(access, str) or not access or not set(access) <= DEVICE_ACCESS:
        raise SpecError(
            f"{where}.access {access!r} must be a non-empty combination of r, w and m"
        )
    return kind, numbers[0], numbers[1], set(access)


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
    for gid in user.get("additionalGids") or []:
        if not isinstance(gid, int) or not 0 <= gid < MAX_ID:
            raise SpecError(
                f"{where}: process.user.additionalGids entry {gid!r} must be an integer "
                f"from 0 to {MAX_ID - 1}"
            )

    umask = user.get("umask")
    if umask is not None and (not _is(umask, int) or not 0 <= umask <= MAX_ID):
        raise SpecError(
            f"{where}: process.user.umask {umask!r} must be an integer from 0 to "
            f"{MAX_ID}, such as 18 for 0o022"
        )

    oom_score_adj = process.get("oomScoreAdj")
    if oom_score_adj is not None and (
        not _is(oom_score_adj, int) or not -1000 <= oom_score_adj <= 1000
    ):
        raise SpecError(
            f"{where}: process.oomScoreAdj {oom_score_adj!r} must be an integer "
            f"from -1000 to 1000"
        )

    for key in ("uid", "gid"):
        value = user.get(key, 0)
        # 4294967295 is (uid_t)-1, which setresuid reads as "leave unchanged".
        if not isinstance(value, int) or not 0 <= value < MAX_ID:
            raise SpecError(
                f"{where}: process.user.{key} {value!r} must be an integer from 0 to "
                f"{MAX_ID - 1}"
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

"""The container's cgroups: linux.resources limits, freezing, and statistics.

Both layouts are handled. With cgroup v2 (``/sys/fs/cgroup/cgroup.controllers``
exists) there is one directory per container. With v1 there is one directory
per controller, and hybrid hosts (v1 with a v2 mount at
``/sys/fs/cgroup/unified``) are treated as v1.

The container's directory is ``linux.cgroupsPath`` under each hierarchy root, or
``/stockade/<id>`` when the spec gives none. ``--systemd-cgroup`` paths of the
form ``slice:prefix:name`` become ``slice/prefix-name.scope`` in the cgroupfs
tree; systemd itself is not asked for anything.

``linux.resources.devices`` is applied on v1 only: the v2 device controller
is a BPF program attached to the cgroup, which this module does not build.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .errors import SpecError, StockadeError

ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = (
    "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer", "devices",
)  # fmt: skip
# Rules appended after the spec's linux.resources.devices, so that the devices
# the runtime puts in /dev stay usable whatever the spec denies: null, zero,
# full, random, urandom, tty, then /dev/pts/* and /dev/pts/ptmx. This is runc's
# AllowedDevices list (libcontainer/specconv/spec_linux.go, runc 1.2) without
# its "mknod any device" rules, because the application cannot create devices.
DEFAULT_ALLOWED_DEVICES = (
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm",
    "c 136:* rwm", "c 5:2 rwm",
)  # fmt: skip
# v2 weight from v1 shares (2..262144 -> 1..10000), as runc converts it.
MAX_SHARES = 262144


class CgroupError(StockadeError):
    pass


def unified() -> bool:
    return os.path.exists(os.path.join(ROOT, "cgroup.controllers"))


def relative_path(container_id: str, spec_path: str | None) -> str:
    """Return the container's cgroup path, relative to each hierarchy root."""
    if not spec_path:
        return f"stockade/{container_id}"
    if ":" in spec_path and not spec_path.startswith("/"):
        parts = spec_path.split(":")
        if len(parts) != 3:
            raise SpecError(
                f"linux.cgroupsPath {spec_path!r} must be slice:prefix:name"
            )
        slice_name, prefix, name = parts
        return f"{slice_name or 'system.slice'}/{prefix}-{name}.scope"
    cleaned = os.path.normpath("/" + spec_path).lstrip("/")
    if not cleaned or cleaned.startswith(".."):
        raise SpecError(f"linux.cgroupsPath {spec_path!r} is not a usable path")
    return cleaned


def directories(relative: str) -> dict[str, str]:
    """Return controller -> directory of the container ("" for the v2 directory)."""
    if unified():
        return {"": os.path.join(ROOT, relative)}
    found = {}
    for controller in V1_CONTROLLERS:
        base = os.path.join(ROOT, controller)
        if os.path.isdir(base):
            found[controller] = os.path.join(base, relative)
    return found


def create(relative: str, resources: dict[str, Any], pid: int) -> dict[str, str]:
    """Make the container's cgroups, set RESOURCES, and move PID into them.

    The device rules wait for restrict_devices, because the sandbox still
    sets up /dev after it joins. Returns the config.json keys that this
    host's cgroups cannot apply, each with the reason, so that the caller
    can warn.
    """
    dirs = directories(relative)
    if not dirs:
        raise CgroupError(f"no cgroup hierarchy found under {ROOT}")
    for controller, path in dirs.items():
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise CgroupError(f"cannot create cgroup {path}: {exc.strerror}") from None
        if controller == "cpuset":
            _inherit_cpuset(path)
    not_applied = {}
    if "" in dirs:
        _apply_v2(dirs[""], resources)
        if resources.get("devices") is not None:
            # NOTE: cgroup v2 has no devices.allow. Enforcing the list needs a
            # BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's
            # cgroup, which this version does not build, so the caller warns.
            not_applied["linux.resources.devices"] = (
                "on cgroup v2 the device list needs a BPF program, which this "
                "version of Stockade does not load"
            )
    else:
        _apply_v1(dirs, resources)
    for path in dirs.values():
        _write(path, "cgroup.procs", str(pid))
    return not_applied


def destroy(relative: str) -> list[str]:
    """Remove the container's cgroups and return the errors instead of raising them."""
    errors = []
    for path in directories(relative).values():
        for attempt in range(50):  # the last processes may still be exiting
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if attempt == 49:
                    errors.append(f"cannot remove cgroup {path}: {exc.strerror}")
                time.sleep(0.02)
        if relative.startswith("stockade/"):
            try:
                os.rmdir(os.path.dirname(path))  # the shared parent, once it is empty
            except OSError:
                pass
    return errors


def freeze(relative: str, frozen: bool) -> None:
    dirs = directories(relative)
    if "" in dirs:
        _write(dirs[""], "cgroup.freeze", "1" if frozen else "0")
        return
    if "freezer" not in dirs:
        raise CgroupError("this host has no freezer cgroup, so pause is not possible")
    state = "FROZEN" if frozen else "THAWED"
    _write(dirs["freezer"], "freezer.state", state)
    for _ in range(500):
        if _read(dirs["freezer"], "freezer.state").strip() == state:
            return
        time.sleep(0.01)
    raise CgroupError(f"cgroup {dirs['freezer']} did not become {state} within 5 s")


def stats(relative: str) -> dict[str, Any]:
    """Return memory, CPU and pids counters in the shape of runc's events --stats."""
    dirs = directories(relative)
    if "" in dirs:
        path = dirs[""]
        usage = int(_read(path, "memory.current") or 0)
        cpu_usec = _key(_read(path, "cpu.stat"), "usage_usec")
        pids = int(_read(path, "pids.current") or 0)
        cpu_ns = cpu_usec * 1000
    else:
        usage = int(_read(dirs.get("memory", ""), "memory.usage_in_bytes") or 0)
        cpu_ns = int(_read(dirs.get("cpuacct", ""), "cpuacct.usage") or 0)
        pids = int(_read(dirs.get("pids", ""), "pids.current") or 0)
    return {
        "cpu": {"usage": {"total": cpu_ns}},
        "memory": {"usage": {"usage": usage}},
        "pids": {"current": pids},
    }


# --- limits ----------------------------------------------------------------


def _apply_v1(dirs: dict[str, str], resources: dict[str, Any]) -> None:
    memory = resources.get("memory") or {}
    cpu = resources.get("cpu") or {}
    pids = resources.get("pids") or {}
    # (controller, file, the spec's key under linux.resources, value)
    settings = [
        ("memory", "memory.limit_in_bytes", "memory.limit", memory.get("limit")),
        ("memory", "memory.soft_limit_in_bytes", "memory.reservation",
         memory.get("reservation")),
        ("memory", "memory.swappiness", "memory.swappiness", memory.get("swappiness")),
        ("cpu", "cpu.shares", "cpu.shares", cpu.get("shares")),
        ("cpu", "cpu.cfs_period_us", "cpu.period", cpu.get("period")),
        ("cpu", "cpu.cfs_quota_us", "cpu.quota", cpu.get("quota")),
        ("cpuset", "cpuset.cpus", "cpu.cpus", cpu.get("cpus")),
        ("cpuset", "cpuset.mems", "cpu.mems", cpu.get("mems")),
        ("pids", "pids.max", "pids.limit", _pids_max(pids.get("limit"))),
        ("blkio", "blkio.weight", "blockIO.weight",
         (resources.get("blockIO") or {}).get("weight")),
    ]  # fmt: skip
    for controller, name, key, value in settings:
        if value is None:
            continue
        if controller not in dirs:
            raise CgroupError(
                f"linux.resources sets {name}, but this host has no {controller} cgroup"
            )
        try:
            _write(dirs[controller], name, str(value))
        except CgroupError as exc:
            raise CgroupError(
                f"linux.resources.{key} {value!r} was rejected by the host ({exc}); "
                "change or remove it"
            ) from None
    if resources.get("devices") is not None and "devices" not in dirs:
        raise CgroupError(
            "linux.resources sets devices, but this host has no devices cgroup"
        )


def restrict_devices(relative: str, resources: dict[str, Any]) -> None:
    """Write the spec's device rules (cgroup v1); the application has not started yet."""
    rules = resources.get("devices")
    path = directories(relative).get("devices")
    if rules is not None and path is not None:
        _apply_device_rules(path, rules)


def reset_devices(relative: str) -> list[str]:
    """Restore the container's device list to its parent's; return the errors.

    This undoes a partly written rule set, because a new cgroup starts with
    a copy of its parent's list.
    """
    path = directories(relative).get("devices")
    if path is None:
        return []
    errors = []
    for line in _read(os.path.dirname(path), "devices.list").splitlines():
        try:
            _write(path, "devices.allow", line)
        except CgroupError as exc:
            errors.append(str(exc))
    return errors


def _apply_device_rules(path: str, rules: list[dict[str, Any]]) -> None:
    """Write RULES in order after denying every device, then the default allows.

    The kernel applies each write to the list it has so far, so the order of
    the spec matters, as it does for runc. A rule of type "a" resets the whole
    list to allow-all or deny-all. Descriptors opened before stay usable.
    """
    _write(path, "devices.deny", "a")
    for rule in rules:
        name = "devices.allow" if rule.get("allow") else "devices.deny"
        _write(path, name, device_rule(rule))
    for line in DEFAULT_ALLOWED_DEVICES:
        _write(path, "devices.allow", line)


def device_rule(rule: dict[str, Any]) -> str:
    """Format one linux.resources.devices entry as a line for devices.allow or deny.

    A missing type means all devices, and a missing major or minor means every
    number, as in the runtime specification.
    """
    kind = rule.get("type") or "a"
    if kind == "a":
        return "a"
    major = rule.get("major")
    minor = rule.get("minor")
    major_text = "*" if major is None or major < 0 else str(major)
    minor_text = "*" if minor is None or minor < 0 else str(minor)
    return f"{kind} {major_text}:{minor_text} {rule['access']}"


def _apply_v2(path: str, resources: dict[str, Any]) -> None:
    memory = resources.get("memory") or {}
    cpu = resources.get("cpu") or {}
    pids = resources.get("pids") or {}
    settings = [
        ("memory.max", _limit(memory.get("limit"))),
        ("memory.low", memory.get("reservation")),
        ("cpu.weight", _weight(cpu.get("shares"))),
        ("cpu.max", _cpu_max(cpu.get("quota"), cpu.get("period"))),
        ("cpuset.cpus", cpu.get("cpus")),
        ("cpuset.mems", cpu.get("mems")),
        ("pids.max", _pids_max(pids.get("limit"))),
        ("io.weight", (resources.get("blockIO") or {}).get("weight")),
    ]
    for name, value in settings:
        if value is not None:
            _write(path, name, str(value))


def _pids_max(limit: Any) -> Any:
    if limit is None:
        return None
    return "max" if limit <= 0 else limit


def _limit(value: Any) -> Any:
    return "max" if value == -1 else value


def _weight(shares: Any) -> Any:
    if shares is None:
        return None
    return 1 + ((int(shares) - 2) * 9999) // (MAX_SHARES - 2)


def _cpu_max(quota: Any, period: Any) -> Any:
    if quota is None and period is None:
        return None
    quota_text = "max" if quota is None or quota < 0 else str(quota)
    return f"{quota_text} {period or 100000}"


# --- files -------------------------------------------------------------------


def _inherit_cpuset(path: str) -> None:
    """Copy the parent's CPUs and memory nodes into an empty v1 cpuset.

    A process cannot join a cpuset until both are set.
    """
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not _read(path, name).strip():
            parent = os.path.dirname(path)
            if not _read(parent, name).strip():
                _inherit_cpuset(parent)
            _write(path, name, _read(parent, name).strip())


def _write(directory: str, name: str, value: str) -> None:
    path = os.path.join(directory, name)
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}") from None


def _read(directory: str, name: str) -> str:
    if not directory:
        return ""
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read()
    except OSError:
        return ""


def _key(text: str, key: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0

"""Build the container's root inside the sandbox's mount namespace.

Runs in the sandbox process after it has its own mount namespace. Every mount
destination is resolved with openat2(RESOLVE_IN_ROOT) relative to the rootfs
and mounted through ``/proc/self/fd/N``, so a symlink in the image cannot
point a mount at a host path.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable
from typing import Any

from . import linux
from .errors import SpecError
from .spec import Spec

# option -> (flags to set, flags to clear)
MOUNT_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (linux.MS_RDONLY, 0),
    "rw": (0, linux.MS_RDONLY),
    "nosuid": (linux.MS_NOSUID, 0),
    "suid": (0, linux.MS_NOSUID),
    "nodev": (linux.MS_NODEV, 0),
    "dev": (0, linux.MS_NODEV),
    "noexec": (linux.MS_NOEXEC, 0),
    "exec": (0, linux.MS_NOEXEC),
    "sync": (linux.MS_SYNCHRONOUS, 0),
    "async": (0, linux.MS_SYNCHRONOUS),
    "dirsync": (linux.MS_DIRSYNC, 0),
    "remount": (linux.MS_REMOUNT, 0),
    "mand": (linux.MS_MANDLOCK, 0),
    "nomand": (0, linux.MS_MANDLOCK),
    "atime": (0, linux.MS_NOATIME),
    "noatime": (linux.MS_NOATIME, 0),
    "diratime": (0, linux.MS_NODIRATIME),
    "nodiratime": (linux.MS_NODIRATIME, 0),
    "relatime": (linux.MS_RELATIME, 0),
    "norelatime": (0, linux.MS_RELATIME),
    "strictatime": (linux.MS_STRICTATIME, 0),
    "nostrictatime": (0, linux.MS_STRICTATIME),
    "lazytime": (linux.MS_LAZYTIME, 0),
    "nolazytime": (0, linux.MS_LAZYTIME),
    "nosymfollow": (linux.MS_NOSYMFOLLOW, 0),
    "symfollow": (0, linux.MS_NOSYMFOLLOW),
    "silent": (linux.MS_SILENT, 0),
    "loud": (0, linux.MS_SILENT),
    "bind": (linux.MS_BIND, 0),
    "rbind": (linux.MS_BIND | linux.MS_REC, 0),
    "defaults": (0, 0),
}
PROPAGATION: dict[str, int] = {
    "private": linux.MS_PRIVATE,
    "rprivate": linux.MS_PRIVATE | linux.MS_REC,
    "shared": linux.MS_SHARED,
    "rshared": linux.MS_SHARED | linux.MS_REC,
    "slave": linux.MS_SLAVE,
    "rslave": linux.MS_SLAVE | linux.MS_REC,
    "unbindable": linux.MS_UNBINDABLE,
    "runbindable": linux.MS_UNBINDABLE | linux.MS_REC,
}
# Flags that a bind mount only takes through a second, remounting call.
REMOUNT_FLAGS = (
    linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    | linux.MS_NOATIME | linux.MS_NODIRATIME | linux.MS_RELATIME
    | linux.MS_STRICTATIME | linux.MS_NOSYMFOLLOW
)  # fmt: skip
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_SYMLINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
    "core": "/proc/kcore",
}
# A tmpfs option for the runtime, not the kernel: copy what the image has at the
# mount point into the new tmpfs. podman sends it for --read-only and --tmpfs.
TMPCOPYUP = "tmpcopyup"
RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
ALL, GOFER, SANDBOX = "all", "gofer", "sandbox"  # see RootBuilder
DEVICE_TYPES = {
    "c": stat.S_IFCHR,
    "u": stat.S_IFCHR,
    "b": stat.S_IFBLK,
    "p": stat.S_IFIFO,
}


def parse_options(options: list[str]) -> tuple[int, int, str]:
    """Split OCI mount options into mount flags, propagation flags and fs data."""
    flags, propagation, data = 0, 0, []
    for option in options:
        if option in MOUNT_FLAGS:
            set_flags, clear_flags = MOUNT_FLAGS[option]
            flags = (flags | set_flags) & ~clear_flags
        elif option in PROPAGATION:
            propagation |= PROPAGATION[option]
        elif option == TMPCOPYUP:
            continue
        else:
            data.append(option)
    return flags, propagation, ",".join(data)


class RootBuilder:
    """Mount the spec's root and mounts, then pivot into them."""

    def __init__(self, spec: Spec, staging: str, role: str = ALL) -> None:
        """STAGING is an empty directory path used when the root is the host's "/".

        ROLE splits the work between a gofer and its sandbox. ALL builds the
        whole root. GOFER builds the rootfs with only the bind mounts, and puts
        a marker (an empty read-only tmpfs) where each other mount goes; the
        markers are in ``self.markers``, destination -> st_dev. SANDBOX builds
        a fresh tmpfs at STAGING with only the mounts that are not binds.
        """
        self.spec = spec
        self.root = spec.root_path
        self.staging = staging
        self.role = role
        self.root_fd = -1
        self.markers: dict[str, int] = {}
        self._marker_fds: list[int] = []
        # GOFER: each tmpcopyup destination -> a detached copy of its filled tmpfs.
        self.copy_ups: dict[str, int] = {}
        # SANDBOX: returns that detached tmpfs for a destination, from the gofer.
        self.fetch_copy_up: Callable[[str], int] | None = None

    def build(self, before_pivot: Callable[[], None] | None = None) -> None:
        """Mount everything and pivot into the root; BEFORE_PIVOT runs just before."""
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        if self.role == SANDBOX:
            # The sandbox's own root contains no host directory, only its mounts.
            # The caller may have made the directory, with rights the sandbox
            # lacks in a user namespace.
            try:
                os.mkdir(self.staging, 0o700)
            except FileExistsError:
                pass
            linux.mount("tmpfs", self.staging, "tmpfs", 0, "mode=755")
            self.root = self.staging
        elif self.root == "/":
            # pivot_root needs a new root apart from the old one, so the host's
            # root is bound onto a staging directory first.
            os.mkdir(self.staging, 0o700)
            linux.mount("/", self.staging, None, linux.MS_BIND | linux.MS_REC)
            self.root = self.staging
        else:
            linux.mount(self.root, self.root, None, linux.MS_BIND | linux.MS_REC)
        self.root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        # Device files in the image stay closed; the container's devices are the
        # ones bound into its own /dev.
        linux.mount_setattr(self.root_fd, linux.MOUNT_ATTR_NODEV, recursive=True)
        try:
            self._mount_all()
            if before_pivot is not None:
                before_pivot()
            self._pivot()
        finally:
            os.close(self.root_fd)
        if self.role != GOFER:
            self._finish_inside()

    # --- before pivot_root --------------------------------------------------

    def _mount_all(self) -> None:
        mounts = self.spec.mounts
        if self.role == SANDBOX:
            mounts = [m for m in mounts if not is_bind(m)]
        destinations = [os.path.normpath(m["destination"]) for m in mounts]
        if self.spec.root_readonly and self.role != SANDBOX:
            # Mount points outside any tmpfs of the spec must exist before the
            # root turns read-only; nested ones are made inside their parent mount.
            for index, mount in enumerate(mounts):
                if not _under_any(destinations[index], destinations[:index]):
                    is_file = self._is_file_bind(mount)
                    os.close(self._open_destination(mount, source_is_file=is_file))
            linux.mount_setattr_readonly(self.root_fd, recursive=True)
        dev_is_tmpfs = False
        for mount in mounts:
            if self.role == GOFER and not is_bind(mount):
                self._mount_marker(mount)
                continue
            self._mount_one(mount)
            if (
                os.path.normpath(mount["destination"]) == "/dev"
                and mount.get("type") == "tmpfs"
            ):
                dev_is_tmpfs = True
        if self.role == GOFER:
            for fd in self._marker_fds:
                # Read-only from now on; mount points for binds inside are made.
                flags = linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID
                linux.mount(None, f"/proc/self/fd/{fd}", None, flags | linux.MS_NODEV)
                os.close(fd)
            self._protect_served_paths()
            return
        if dev_is_tmpfs:
            self._populate_dev()
        for device in self.spec.linux.get("devices") or []:
            self._create_device(device)

    def _protect_served_paths(self) -> None:
        """Apply maskedPaths and readonlyPaths to the paths the gofer serves.

        The gofer opens files for the application in this namespace, so the
        application meets these mounts. Paths in the sandbox's own mounts
        (/proc, /sys) resolve to a marker here, or to nothing, and the sandbox
        protects them itself.
        """
        markers = set(self.markers.values())
        linux_section = self.spec.linux
        for path in linux_section.get("maskedPaths") or []:
            fd = self._served_path(path, markers)
            if fd < 0:
                continue
            try:
                target = f"/proc/self/fd/{fd}"
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    linux.mount("tmpfs", target, "tmpfs", linux.MS_RDONLY, "size=0")
                else:
                    linux.mount("/dev/null", target, None, linux.MS_BIND)
            finally:
                os.close(fd)
        for path in linux_section.get("readonlyPaths") or []:
            fd = self._served_path(path, markers)
            if fd < 0:
                continue
            try:
                target = f"/proc/self/fd/{fd}"
                linux.mount(target, target, None, linux.MS_BIND | linux.MS_REC)
            finally:
                os.close(fd)
            fd = self._served_path(path, markers)  # the bind mount just made
            try:
                linux.mount_setattr_readonly(fd)
            finally:
                os.close(fd)

    def _served_path(self, path: str, markers: set[int]) -> int:
        """Open PATH in the root with O_PATH; return -1 if it is missing or in a marker."""
        try:
            fd = linux.openat2(self.root_fd, path.lstrip("/") or ".", os.O_PATH, 0, RESOLVE)
        except (FileNotFoundError, NotADirectoryError):
            return -1
        if os.fstat(fd).st_dev in markers:
            os.close(fd)
            return -1
        return fd

    def _mount_marker(self, mount: dict[str, Any]) -> None:
        """Mark where a sandbox-owned mount goes with an empty tmpfs of its own.

        A tmpcopyup tmpfs is first made and filled here, where the image is,
        and kept as a detached mount for the sandbox (see fetch_copy_up).
        """
        if mount.get("type") == "tmpfs" and TMPCOPYUP in (mount.get("options") or []):
            self._mount_one(mount)
            fd = self._open_destination(mount)
            try:
                destination = os.path.normpath(mount["destination"])
                self.copy_ups[destination] = linux.open_tree_clone(fd)
            finally:
                os.close(fd)
        fd = self._open_destination(mount)
        try:
            target = f"/proc/self/fd/{fd}"
            linux.mount("stockade-marker", target, "tmpfs", 0, "mode=755,size=64k")
        finally:
            os.close(fd)
        fd = self._open_destination(mount)
        self._marker_fds.append(fd)
        self.markers[os.path.normpath(mount["destination"])] = os.fstat(fd).st_dev

    def _mount_one(self, mount: dict[str, Any]) -> None:
        options = mount.get("options") or []
        flags, propagation, data = parse_options(options)
        kind = mount.get("type") or ("bind" if flags & linux.MS_BIND else "none")
        if kind == "bind":
            flags |= linux.MS_BIND
        source = self._source(mount)
        if flags & linux.MS_BIND:
            if not os.path.exists(source):
                raise SpecError(
                    f"bind mount source {source} for {mount['destination']} does not exist"
                )
        if kind == "cgroup":
            # NOTE: cgroup views arrive with linux.resources support; until then the
            # container gets an empty read-only tmpfs at the cgroup mount point.
            kind, source, data, flags = (
                "tmpfs",
                "cgroup",
                "mode=755",
                flags | linux.MS_RDONLY,
            )

        copy_up = kind == "tmpfs" and TMPCOPYUP in options
        if copy_up and self.role == SANDBOX:
            self._attach_copy_up(mount)
            return
        fd = self._open_destination(mount, source_is_file=self._is_file_bind(mount))
        try:
            self._mount_at(
                source, f"/proc/self/fd/{fd}", kind, flags, data, mount["destination"]
            )
            if copy_up:
                self._copy_up(fd, mount)
        finally:
            os.close(fd)
        if flags & linux.MS_BIND and flags & REMOUNT_FLAGS or propagation:
            # A descriptor opened before the mount names the directory beneath it,
            # so the remount and the propagation change need a fresh one.
            fd = self._open_destination(mount)
            try:
                self._adjust_mount(
                    f"/proc/self/fd/{fd}", flags, propagation, mount["destination"]
                )
            finally:
                os.close(fd)

    def _attach_copy_up(self, mount: dict[str, Any]) -> None:
        """Attach the tmpfs that the gofer filled from the image at the destination."""
        if self.fetch_copy_up is None:
            raise SpecError(
                f"mount option {TMPCOPYUP} on {mount['destination']} is not supported "
                "by this file-access mode: use --file-access=direct or gofer"
            )
        tree = self.fetch_copy_up(os.path.normpath(mount["destination"]))
        try:
            fd = self._open_destination(mount)
            try:
                linux.move_mount(tree, fd)
            finally:
                os.close(fd)
        finally:
            os.close(tree)

    def _copy_up(self, beneath_fd: int, mount: dict[str, Any]) -> None:
        """Copy the directory beneath a new tmpfs into it, with owners and modes.

        BENEATH_FD was opened before the mount, so it still names the image's
        directory. The container has not started, so nothing changes it meanwhile.
        """
        beneath = f"/proc/self/fd/{beneath_fd}"
        top_fd = self._open_destination(mount)
        try:
            top = f"/proc/self/fd/{top_fd}"
            destination = mount["destination"]
            try:
                _copy_tree(beneath, top)
                # TOP is a magic link to the tmpfs's root, so it is followed.
                _copy_metadata(os.stat(beneath), top, follow=True)
            except OSError as exc:
                # The paths in the error are the descriptors' aliases, so name
                # the files by their paths in the container.
                where = str(exc.filename or "")
                for alias in (beneath, top):
                    if where.startswith(alias):
                        where = destination.rstrip("/") + where[len(alias) :]
                raise SpecError(
                    f"copying {destination} into its tmpfs ({TMPCOPYUP}) "
                    f"failed: {exc.strerror}: {where}"
                ) from None
            except RecursionError:
                raise SpecError(
                    f"copying {destination} into its tmpfs ({TMPCOPYUP}) failed: "
                    f"the directory tree is too deep"
                ) from None
        finally:
            os.close(top_fd)

    def _source(self, mount: dict[str, Any]) -> str:
        """Return the mount's source; a bind source is relative to the bundle."""
        source = mount.get("source") or mount.get("type") or "none"
        if is_bind(mount):
            return os.path.join(self.spec.bundle, source)
        return source

    def _is_file_bind(self, mount: dict[str, Any]) -> bool:
        return is_bind(mount) and os.path.isfile(self._source(mount))

    def _mount_at(
        self, source: str, target: str, kind: str, flags: int, data: str, dest: str
    ) -> None:
        try:
            if flags & linux.MS_BIND:
                linux.mount(
                    source, target, None, flags & (linux.MS_BIND | linux.MS_REC)
                )
            else:
                linux.mount(source, target, kind, flags & ~linux.MS_REC, data or None)
        except OSError as exc:
            raise SpecError(
                f"mount of {kind} {source} on {dest} failed: {os.strerror(exc.errno)}"
            ) from None

    def _adjust_mount(
        self, target: str, flags: int, propagation: int, dest: str
    ) -> None:
        try:
            if flags & linux.MS_BIND and flags & REMOUNT_FLAGS:
                remount = linux.MS_BIND | linux.MS_REMOUNT | (flags & REMOUNT_FLAGS)
                linux.mount(None, target, None, remount | _locked_flags(target))
            if propagation:
                linux.mount(None, target, None, propagation)
        except OSError as exc:
            raise SpecError(
                f"setting the options of the mount on {dest} failed: {os.strerror(exc.errno)}"
            ) from None

    def _open_destination(
        self, mount: dict[str, Any], source_is_file: bool = False
    ) -> int:
        """Open (creating if missing) the mount point inside the root, never outside it."""
        destination = os.path.normpath(mount["destination"]).lstrip("/")
        try:
            return linux.openat2(self.root_fd, destination, os.O_PATH, 0, RESOLVE)
        except FileNotFoundError:
            pass
        parent, _, name = destination.rpartition("/")
        parent_fd = self._make_dirs(parent)
        try:
            if source_is_file:
                # openat2, not open: a dangling symlink in the image must not make
                # the kernel create its target on the host.
                flags = os.O_CREAT | os.O_WRONLY
                os.close(
                    linux.openat2(self.root_fd, destination, flags, 0o644, RESOLVE)
                )
            else:
                os.mkdir(name, 0o755, dir_fd=parent_fd)
        except FileExistsError:
            pass
        finally:
            os.close(parent_fd)
        return linux.openat2(self.root_fd, destination, os.O_PATH, 0, RESOLVE)

    def _make_dirs(self, relative: str) -> int:
        fd = os.dup(self.root_fd)
        for part in filter(None, relative.split("/")):
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                next_fd = linux.openat2(
                    fd, part, os.O_PATH | os.O_DIRECTORY, 0, RESOLVE
                )
            finally:
                os.close(fd)
            fd = next_fd
        return fd

    def _populate_dev(self) -> None:
        """Give a tmpfs /dev the default device set, bound from the host's nodes."""
        dev_fd = linux.openat2(
            self.root_fd, "dev", os.O_PATH | os.O_DIRECTORY, 0, RESOLVE
        )
        try:
            for name in DEVICES:
                if not stat.S_ISCHR(os.stat(f"/dev/{name}").st_mode):
                    continue
                os.close(
                    os.open(
                        name,
                        os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC,
                        0o666,
                        dir_fd=dev_fd,
                    )
                )
                node = linux.openat2(dev_fd, name, os.O_PATH, 0, RESOLVE)
                try:
                    linux.mount(
                        f"/dev/{name}", f"/proc/self/fd/{node}", None, linux.MS_BIND
                    )
                finally:
                    os.close(node)
            for name, target in DEV_SYMLINKS.items():
                try:
                    os.symlink(target, name, dir_fd=dev_fd)
                except FileExistsError:
                    pass
        finally:
            os.close(dev_fd)

    def _create_device(self, device: dict[str, Any]) -> None:
        """Create a device node of linux.devices inside the root, never outside it."""
        path = device.get("path")
        kind = DEVICE_TYPES.get(device.get("type", ""))
        if isinstance(path, str):
            path = os.path.normpath(path)
        if not isinstance(path, str) or not path.startswith("/dev/") or kind is None:
            raise SpecError(
                f"linux.devices entry {device!r} needs a path under /dev and a type "
                f"of c, b, u or p"
            )
        parent, _, name = os.path.normpath(path).lstrip("/").rpartition("/")
        parent_fd = self._make_dirs(parent)
        try:
            mode = kind | (device.get("fileMode") or 0o666)
            number = os.makedev(device.get("major", 0), device.get("minor", 0))
            try:
                os.unlink(name, dir_fd=parent_fd)  # replace a default node of that name
            except FileNotFoundError:
                pass
            os.mknod(name, mode, number, dir_fd=parent_fd)
            os.chmod(
                name, mode & 0o7777, dir_fd=parent_fd
            )  # the umask applied to mknod
            os.chown(name, device.get("uid", 0), device.get("gid", 0), dir_fd=parent_fd)
        except OSError as exc:
            raise SpecError(f"cannot create device {path}: {exc.strerror}") from None
        finally:
            os.close(parent_fd)

    def _pivot(self) -> None:
        os.fchdir(self.root_fd)
        linux.pivot_root(".", ".")
        linux.umount2(".", linux.MNT_DETACH)
        os.chdir("/")

    # --- after pivot_root -----------------------------------------------------

    def _finish_inside(self) -> None:
        linux_section = self.spec.linux
        apply_sysctls(linux_section.get("sysctl") or {})
        for path in linux_section.get("maskedPaths") or []:
            mask_path(path)
        for path in linux_section.get("readonlyPaths") or []:
            make_readonly(path)


# Kernel parameters that belong to the container's own IPC and network
# namespaces; any other key would change the host.
NAMESPACED_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                      "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                      "kernel.shm_rmid_forced")  # fmt: skip
NAMESPACED_PREFIXES = ("fs.mqueue.", "net.")


def apply_sysctls(sysctls: dict[str, Any]) -> None:
    """Write linux.sysctl through the container's own /proc/sys."""
    for key, value in sysctls.items():
        parts = key.split(".")
        if not all(part and part != ".." and "/" not in part for part in parts):
            raise SpecError(
                f"invalid linux.sysctl key {key!r}: use dotted names like net.ipv4.ip_forward"
            )
        if key not in NAMESPACED_SYSCTLS and not key.startswith(NAMESPACED_PREFIXES):
            raise SpecError(
                f"linux.sysctl {key!r} is not namespaced, so setting it would change the "
                f"host; only kernel IPC keys, fs.mqueue.* and net.* are allowed"
            )
        path = "/proc/sys/" + "/".join(parts)
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as exc:
            raise SpecError(
                f"cannot set linux.sysctl {key}={value}: {exc.strerror}"
            ) from None


def mask_path(path: str) -> None:
    """Hide PATH: an empty read-only tmpfs over a directory, /dev/null over a file."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(info.st_mode):
        linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY, "size=0")
    else:
        linux.mount("/dev/null", path, None, linux.MS_BIND)


def make_readonly(path: str) -> None:
    try:
        linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return
        raise
    flags = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | _locked_flags(path)
    linux.mount(None, path, None, flags)


def _locked_flags(path: str) -> int:
    """Mount flags of PATH that a remount must repeat (the kernel keeps them locked)."""
    flags = os.statvfs(path).f_flag
    result = 0
    for st_flag, ms_flag in (
        (os.ST_NOSUID, linux.MS_NOSUID),
        (os.ST_NODEV, linux.MS_NODEV),
        (os.ST_NOEXEC, linux.MS_NOEXEC),
    ):
        if flags & st_flag:
            result |= ms_flag
    return result


def _copy_tree(source: str, target: str) -> None:
    """Copy directories, regular files and symlinks, and skip devices, FIFOs and sockets."""
    # NOTE: file data is copied in full, so a sparse file takes its whole size
    # in the tmpfs. Hard links become separate files and xattrs are not kept.
    for entry in os.scandir(source):
        info = entry.stat(follow_symlinks=False)
        destination = os.path.join(target, entry.name)
        if stat.S_ISDIR(info.st_mode):
            os.mkdir(destination, 0o700)
            _copy_tree(entry.path, destination)
        elif stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(entry.path), destination)
        elif stat.S_ISREG(info.st_mode):
            shutil.copyfile(entry.path, destination)
        else:
            continue
        _copy_metadata(info, destination)


def _copy_metadata(info: os.stat_result, path: str, follow: bool = False) -> None:
    """Give PATH the owner, mode and times in INFO; FOLLOW a symlink at PATH or not.

    Without FOLLOW, a /proc/self/fd link would itself get the owner and times,
    and its chown fails in a user namespace that does not map the host's root.
    """
    os.chown(path, info.st_uid, info.st_gid, follow_symlinks=follow)
    if follow or not stat.S_ISLNK(info.st_mode):
        # After the chown, which clears the set-user-ID and set-group-ID bits.
        os.chmod(path, stat.S_IMODE(info.st_mode))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=follow)


def is_bind(mount: dict[str, Any]) -> bool:
    """Return whether MOUNT is a bind mount, by its type or its options."""
    flags, _, _ = parse_options(mount.get("options") or [])
    return mount.get("type") == "bind" or bool(flags & linux.MS_BIND)


def _under_any(path: str, parents: list[str]) -> bool:
    return any(path != p and (p == "/" or path.startswith(p + "/")) for p in parents)

"""The gofer file-access mode: the sandbox reaches files only through the gofer.

Each escape test puts a host directory beside the bundle with a file that
contains HOST, and a mirror of that directory's path inside the rootfs whose
file contains "mirror". A path resolved inside the container, as it must be,
reads the mirror. Reading HOST would be an escape.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import struct
import threading
import time

import pytest

from programs import install, programs  # noqa: F401  (fixture)
from stockade.sentry import fileproto as fp

GOFER = {"STOCKADE_FILE_ACCESS": "gofer"}
SANDBOX_FS_TYPES = {"tmpfs", "proc", "sysfs", "devpts", "mqueue", "devtmpfs"}


@pytest.fixture
def gofer(stockade):
    stockade.env.update(GOFER)
    return stockade


@pytest.fixture
def host_dir(tmp_path):
    path = tmp_path / "host"
    path.mkdir()
    (path / "secret").write_text("HOST\n")
    return path


def mirror(bundle, host_dir):
    path = bundle / "rootfs" / str(host_dir).lstrip("/")
    path.mkdir(parents=True)
    (path / "secret").write_text("mirror\n")
    return path


def run(gofer, bundle, name="c1"):
    return gofer("run", "--bundle", str(bundle), name)


def test_sandbox_mounts_hold_no_host_directory(gofer, make_bundle):
    bundle = make_bundle("cat", "/proc/self/mountinfo")
    result = run(gofer, bundle)
    assert result.returncode == 0, result.stderr
    kinds = {line.split(" - ")[1].split()[0] for line in result.stdout.splitlines()}
    assert kinds <= SANDBOX_FS_TYPES, result.stdout
    for line in result.stdout.splitlines():
        fields = line.split()
        if line.split(" - ")[1].startswith("devtmpfs"):
            assert fields[3] in {f"/{d}" for d in ("null", "zero", "full", "random",
                                                    "urandom", "tty")}  # fmt: skip


@pytest.mark.parametrize(
    "link", ["absolute", "relative", "dotdot"], ids=["absolute", "relative", "dotdot"]
)
def test_symlinks_resolve_inside_the_root(gofer, make_bundle, host_dir, link):
    script = (
        "cat /evil/secret; echo new > /evil/written; ls /evil | sort | tr '\\n' ' '"
    )
    bundle = make_bundle("sh", "-c", script)
    mirror(bundle, host_dir)
    target = {
        "absolute": str(host_dir),
        "relative": "../" * 30 + str(host_dir).lstrip("/"),
        "dotdot": "/etc/../../../.." + str(host_dir),
    }[link]
    os.symlink(target, bundle / "rootfs" / "evil")
    result = run(gofer, bundle)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["mirror", "secret written "]
    assert sorted(os.listdir(host_dir)) == ["secret"]


def test_magic_links_lead_nowhere(gofer, make_bundle, host_dir):
    secret = str(host_dir / "secret")
    tries = [f"/procroot{secret}", f"/proc/self/root{secret}", f"/proc/1/root{secret}",
             f"/proc/self/cwd/../../../..{secret}", f"/proc/self/fd/3/../../..{secret}"]  # fmt: skip
    script = "exec 3</etc; " + "; ".join(f"cat {p} 2>/dev/null" for p in tries)
    script += "; echo done"
    bundle = make_bundle("sh", "-c", script)
    os.symlink("/proc/self/root", bundle / "rootfs" / "procroot")
    result = run(gofer, bundle)
    assert result.returncode == 0, result.stderr
    assert "HOST" not in result.stdout
    assert result.stdout.strip().endswith("done")


def test_hard_link_cannot_reach_the_host(gofer, make_bundle, host_dir):
    script = (
        "ln /evil/secret /linked && cat /linked; ln /evil/secret /evil/again; echo end"
    )
    bundle = make_bundle("sh", "-c", script)
    mirror(bundle, host_dir)
    os.symlink(str(host_dir), bundle / "rootfs" / "evil")
    result = run(gofer, bundle)
    assert "HOST" not in result.stdout
    assert os.stat(host_dir / "secret").st_nlink == 1
    assert sorted(os.listdir(host_dir)) == ["secret"]


def test_rename_race_stays_inside(gofer, make_bundle, host_dir, programs):  # noqa: F811
    bundle = make_bundle("/bin/swap", "/work/dir", str(host_dir), "3000")
    install(bundle, programs, "swap")
    work = bundle / "rootfs" / "work" / "dir"
    work.mkdir(parents=True)
    (work / "secret").write_text("inside\n")
    mirror(bundle, host_dir)
    result = run(gofer, bundle)
    assert result.returncode == 0, result.stderr
    counts = dict(line.split() for line in result.stdout.splitlines())
    assert counts["other"] == "0", result.stdout
    assert int(counts["inside"]) > 0


def test_read_only_mounts_enforced(gofer, make_bundle, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "kept").write_text("kept\n")

    def edit(config):
        config["root"]["readonly"] = True
        config["mounts"].append(
            {
                "destination": "/data",
                "type": "bind",
                "source": str(data),
                "options": ["rbind", "ro"],
            }  # fmt: skip
        )

    script = ("echo x > /data/new; echo x > /etc/new; mkdir /etc/d; rm /data/kept;"
              " cat /data/kept; echo x > /tmp/ok && echo tmp-ok")  # fmt: skip
    bundle = make_bundle("sh", "-c", script, edit=edit)
    result = run(gofer, bundle)
    assert "Read-only file system" in result.stderr
    assert result.stdout.splitlines()[0] == "kept"
    assert sorted(os.listdir(data)) == ["kept"]
    assert not (bundle / "rootfs" / "etc" / "new").exists()


def test_device_nodes_cannot_be_made(gofer, make_bundle):
    script = "mknod /tmp/null c 1 3 || echo refused; mkfifo /tmp/fifo && echo fifo-ok"
    bundle = make_bundle("sh", "-c", script)
    result = run(gofer, bundle)
    assert result.stdout.split() == ["refused", "fifo-ok"]
    assert not (bundle / "rootfs" / "tmp" / "null").exists()


def test_working_directory_scripts_and_proc(gofer, make_bundle):
    script = r"""
cd /etc && head -n 1 passwd
cd /proc && grep -c Name self/status
cd /bin && pwd
printf '#!/bin/sh\necho script "$@"\n' > /tmp/s && chmod +x /tmp/s && /tmp/s one two
cd /tmp && ./s three
readlink /proc/self/exe
"""
    bundle = make_bundle("sh", "-c", script)
    result = run(gofer, bundle)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "root:x:0:0:root:/root:/bin/sh",
        "1",
        "/bin",
        "script one two",
        "script three",
        "/bin/busybox",
    ]


def test_proc_links_by_own_pid(gofer, make_bundle):
    """/proc/PID/exe and /proc/PID/cwd name the program and directory, not copies."""
    script = "cd /etc; sh -c 'exec readlink /proc/$$/exe'; sh -c 'exec readlink /proc/$$/cwd'; exec readlink /proc/1/exe"
    bundle = make_bundle("sh", "-c", script)
    result = run(gofer, bundle)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["/bin/busybox", "/etc", "/bin/busybox"]


def test_permissions_follow_the_callers_user(gofer, make_bundle):
    def edit(config):
        config["process"]["user"] = {"uid": 1000, "gid": 1000}

    script = "cat /secret; echo x > /etc/owned; ls /secret && echo listed"
    bundle = make_bundle("sh", "-c", script, edit=edit)
    (bundle / "rootfs" / "secret").write_text("root only\n")
    os.chmod(bundle / "rootfs" / "secret", 0o600)
    result = run(gofer, bundle)
    assert "root only" not in result.stdout
    assert "Permission denied" in result.stderr
    assert not (bundle / "rootfs" / "etc" / "owned").exists()
    assert "listed" in result.stdout


def test_gofer_death_fails_calls_with_eio(gofer, make_bundle, root):
    script = "cat /etc/hostname; sleep 2; cat /etc/passwd; echo status $?"
    bundle = make_bundle("sh", "-c", script)
    (bundle / "rootfs" / "etc" / "hostname").write_text("box\n")
    killed = []

    def kill_gofer_once_running():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                state = json.loads((root / "c1" / "state.json").read_text())
                pid = state["plugin_state"]["gofer"]["pid"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
                continue
            time.sleep(1.0)
            os.kill(pid, 9)  # the gofer this test's container started
            killed.append(pid)
            return

    killer = threading.Thread(target=kill_gofer_once_running)
    killer.start()
    result = run(gofer, bundle)
    killer.join()
    assert killed
    lines = result.stdout.splitlines()
    assert lines[0] == "box"
    assert lines[-1].startswith("status "), result.stdout
    assert lines[-1] != "status 0", result.stdout
    assert not (root / "c1").exists()


def test_state_says_when_the_gofer_died(gofer, make_bundle, root):
    bundle = make_bundle("sh", "-c", "while true; do cat /etc/passwd; sleep 0.2; done")
    gofer.ok("create", "--bundle", str(bundle), "c1")
    gofer.ok("start", "c1")
    state = json.loads((root / "c1" / "state.json").read_text())
    os.kill(state["plugin_state"]["gofer"]["pid"], 9)  # this test's own gofer
    deadline = time.monotonic() + 10
    annotations = {}
    while time.monotonic() < deadline and "stockade.problem" not in annotations:
        time.sleep(0.1)
        annotations = gofer.state("c1").get("annotations", {})
    assert "gofer exited" in annotations.get("stockade.problem", "")
    assert gofer.state("c1")["status"] == "running"
    gofer.ok("delete", "--force", "c1")
    assert not (root / "c1").exists()


def test_exec_after_gofer_died_names_it(gofer, make_bundle, root):
    """exec without a gofer names the dead gofer, not the working directory."""
    gofer.ok("create", "--bundle", str(make_bundle("sleep", "100")), "c1")
    gofer.ok("start", "c1")
    state = json.loads((root / "c1" / "state.json").read_text())
    os.kill(state["plugin_state"]["gofer"]["pid"], 9)  # this test's own gofer
    time.sleep(0.3)

    first = gofer("exec", "c1", "true")
    second = gofer("exec", "c1", "true")
    gofer.ok("delete", "--force", "c1")

    for result in (first, second):
        assert result.returncode != 0
        assert "gofer exited" in result.stderr, result.stderr
        assert "delete --force c1" in result.stderr, result.stderr
        assert "--cwd" not in result.stderr, result.stderr


def test_exec_retry_reads_new_path(gofer, make_bundle, programs):  # noqa: F811
    """A failed execve's path is read again when its buffer is reused, as along PATH."""
    bundle = make_bundle("/bin/probe", "reuse", "/nope/echo", "/bin/echo")
    install(bundle, programs, "probe")

    result = gofer.ok("run", "--bundle", str(bundle), "c1")

    assert result.stdout.splitlines() == ["open ok", "reused"]


def test_missing_bind_source_fails_create(gofer, make_bundle, root):
    def edit(config):
        config["mounts"].append(
            {
                "destination": "/data",
                "type": "bind",
                "source": "/nonexistent/source",
                "options": ["rbind"],
            }  # fmt: skip
        )

    bundle = make_bundle("true", edit=edit)
    result = gofer("create", "--bundle", str(bundle), "c1")
    assert result.returncode != 0
    assert "/nonexistent/source" in result.stderr
    assert not (root / "c1").exists()


def gofer_zombies() -> set[int]:
    """Return the exited, unreaped gofers that this test process adopted."""
    found = set()
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        command = raw[raw.index(b"(") + 1 : raw.rindex(b")")]
        fields = raw[raw.rindex(b")") + 2 :].split()
        if command == b"stockade-gofer" and fields[0] == b"Z":
            if int(fields[1]) == os.getpid():
                found.add(int(name))
    return found


def test_failed_create_reaps_the_gofer(gofer, make_bundle):
    def edit(config):
        config["mounts"].append(
            {"destination": "/data", "type": "bind", "source": "/nonexistent/source"}
        )

    bundle = make_bundle("true", edit=edit)
    before = gofer_zombies()
    result = gofer("create", "--bundle", str(bundle), "c1")
    assert result.returncode != 0
    assert gofer_zombies() <= before


# --- the protocol, against a gofer serving a plain directory ----------------------


@pytest.fixture
def served(tmp_path):
    """A Gofer serving TMP_PATH/root in a thread of this process; yields the client."""
    from stockade.plugins.fs_gofer.server import Gofer

    top = tmp_path / "root"
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "motd").write_text("hello\n")
    root_fd = os.open(top, os.O_PATH | os.O_DIRECTORY)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    gofer = Gofer(root_fd, {})
    gofer.current = (0, 0, (), 0o022, 0)  # never change this test process's ids
    gofer._become = lambda creds: None  # type: ignore[method-assign]
    thread = threading.Thread(target=gofer.serve, args=(theirs,), daemon=True)
    thread.start()
    yield ours
    ours.close()
    thread.join(5)
    theirs.close()
    os.close(root_fd)


def _exchange(sock, raw):
    sock.send(raw)
    reply = sock.recv(fp.MAX_MESSAGE)
    return fp.REPLY.unpack_from(reply)


def test_malformed_requests_are_rejected(served):
    header = fp.REQUEST.pack(fp.VERSION, fp.OPEN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0)
    cases = [
        b"",
        b"\x01",
        b"\xff" * fp.REQUEST.size,  # wrong version
        header,  # the lengths promise four more bytes
        header + b"/e\0c",  # NUL in a path
        fp.REQUEST.pack(fp.VERSION, 999, *[0] * 13),  # unknown operation
        fp.REQUEST.pack(fp.VERSION, fp.OPEN, 0, 0, 0, 0, 0, 9999, 0, 0, 0, 0, 0, 0, 0),
        b"\x00" * (fp.MAX_MESSAGE + 100),
    ]
    for raw in cases:
        if not raw:
            continue
        version, kind, value = _exchange(served, raw)
        assert kind == fp.ERROR, raw[:32]
    for index in range(300):
        junk = os.urandom(fp.REQUEST.size + index % 40)
        assert _exchange(served, junk)[1] in (fp.ERROR, fp.OK, fp.REDIRECT)
    client = fp.FileClient(served)
    reply = client.call(fp.STAT, fp.ROOT, b"/etc/motd")
    assert reply.kind == fp.OK
    assert struct.unpack_from("<q", reply.data, 48)[0] == len("hello\n")


def test_paths_stay_in_the_served_root(served, tmp_path):
    (tmp_path / "outside").write_text("HOST\n")
    os.symlink("../../outside", tmp_path / "root" / "up")
    client = fp.FileClient(served)
    for path in (b"/../outside", b"/up", b"/etc/../../outside"):
        reply = client.call(fp.OPEN, fp.ROOT, path, flags=os.O_RDONLY)
        if reply.fd >= 0:
            assert os.read(reply.fd, 10) != b"HOST\n"
            os.close(reply.fd)
        else:
            assert reply.kind == fp.ERROR


def test_unix_sockets_with_paths(gofer, make_bundle, programs):  # noqa: F811
    bundle = make_bundle(
        "sh", "-c", "/bin/unixsock /tmp/sock && ls -l /tmp/sock | cut -c1"
    )
    install(bundle, programs, "unixsock")
    result = run(gofer, bundle)
    assert result.stdout.split() == ["hello", "s"], result.stderr
    assert (bundle / "rootfs" / "tmp" / "sock").is_socket()


def test_processes_keep_their_names(gofer, make_bundle):
    script = "cat /proc/self/comm; /bin/sleep 1 & sleep 0.3; cat /proc/$!/comm"
    bundle = make_bundle("sh", "-c", script)
    result = run(gofer, bundle)
    assert result.stdout.split() == ["cat", "sleep"], result.stderr


def test_sandbox_descriptors_lead_nowhere(gofer, make_bundle, host_dir):
    """Paths through the sandbox process's own descriptors, by several routes."""

    def edit(config):
        config["process"]["user"] = {"uid": 1000, "gid": 1000}

    (host_dir / "secret").chmod(0o600)
    up = "/../.." + str(host_dir)
    tries = [f"/proc/1/fd/{n}{up}/secret" for n in range(3, 12)]
    tries += [f"/proc/../proc/1/fd/{n}{up}/secret" for n in range(3, 12)]
    tries += ["/proc/../proc/1/mem", "/proc/1/cwd/etc/passwd", "/root/innersecret",
              "/proc/self/fd/3/../root/innersecret"]  # fmt: skip
    script = "exec 3</; " + "; ".join(f"cat {p} 2>/dev/null" for p in tries)
    script += f"; echo x > /proc/1/fd/5{up}/written 2>/dev/null"
    script += "; ln -s /proc /tmp/p; cd /tmp/p 2>/dev/null && cat 1/fd/5/state.json"
    script += "; readlink /proc/1/cwd; echo end"
    bundle = make_bundle("sh", "-c", script, edit=edit)
    (bundle / "rootfs" / "root" / "innersecret").write_text("INNER\n")
    (bundle / "rootfs" / "root" / "innersecret").chmod(0o600)
    result = run(gofer, bundle)
    assert "HOST" not in result.stdout
    assert "INNER" not in result.stdout
    assert "ociVersion" not in result.stdout
    assert result.stdout.splitlines()[-1] == "end"
    assert sorted(os.listdir(host_dir)) == ["secret"]


def test_program_copies_cannot_be_replaced(gofer, make_bundle):
    script = (
        "d=$(ls /proc/self/root/.stockade/exec | head -n 1);"
        " cp /bin/busybox /proc/self/root/.stockade/exec/new 2>/dev/null || echo refused;"
        " echo x > /proc/self/root/.stockade/exec/$d/sh 2>/dev/null || echo refused;"
        " mkdir /proc/self/root/x 2>/dev/null || echo refused"
    )
    bundle = make_bundle("sh", "-c", script)
    result = run(gofer, bundle)
    assert result.stdout.split() == ["refused", "refused", "refused"], result.stderr


def test_fifo_behind_a_symlink_blocks_only_its_caller(gofer, make_bundle):
    script = (
        "mkfifo /dev/shm/ff; ln -s /dev/shm/ff /tmp/l;"
        " (echo x > /tmp/l 2>/dev/null) & sleep 0.5; ls /etc >/dev/null && echo alive;"
        " kill $! 2>/dev/null; echo end"
    )
    bundle = make_bundle("sh", "-c", script)
    result = gofer("run", "--bundle", str(bundle), "c1", timeout=30)
    assert result.stdout.split() == ["alive", "end"], result.stderr


def test_execute_only_program_runs(gofer, make_bundle, programs):  # noqa: F811
    def edit(config):
        config["process"]["user"] = {"uid": 1000, "gid": 1000}

    bundle = make_bundle("/bin/unixsock", "/tmp/s1", edit=edit)
    install(bundle, programs, "unixsock")
    (bundle / "rootfs" / "bin" / "unixsock").chmod(0o711)
    (bundle / "rootfs" / "tmp").chmod(0o1777)
    result = run(gofer, bundle)
    assert result.stdout.strip() == "hello", result.stderr


def test_nosuid_mount_keeps_the_callers_ids(gofer, make_bundle, programs, tmp_path):  # noqa: F811
    data = tmp_path / "suid"
    data.mkdir()
    shutil.copy(programs["probe"], data / "probe")
    os.chmod(data / "probe", 0o4755)

    def edit(config):
        config["process"]["user"] = {"uid": 1000, "gid": 1000}
        config["process"]["noNewPrivileges"] = False
        config["mounts"].append(
            {
                "destination": "/data",
                "type": "bind",
                "source": str(data),
                "options": ["rbind", "nosuid", "ro"],
            }  # fmt: skip
        )

    bundle = make_bundle("/data/probe", "ids", edit=edit)
    result = run(gofer, bundle)
    assert result.stdout.strip() == "uid 1000 euid 1000", result.stderr


def test_capabilities_dropped_before_exec_stay_dropped(gofer, make_bundle, programs):  # noqa: F811
    def edit(config):
        caps = config["process"]["capabilities"]
        for kind in ("bounding", "effective", "permitted"):
            caps[kind] = sorted(
                set(caps.get(kind, [])) | {"CAP_DAC_OVERRIDE", "CAP_SETPCAP"}
            )

    bundle = make_bundle("/bin/probe", "dropexec", "/bin/cat", "/secret", edit=edit)
    install(bundle, programs, "probe")
    secret = bundle / "rootfs" / "secret"
    secret.write_text("OWNED BY 1000\n")
    os.chown(secret, 1000, 1000)
    secret.chmod(0o600)
    result = run(gofer, bundle)
    assert "OWNED BY 1000" not in result.stdout
    assert "Permission denied" in result.stderr


def test_execute_only_program_stays_unreadable(gofer, make_bundle, programs):  # noqa: F811
    def edit(config):
        config["process"]["capabilities"] = {
            kind: ["CAP_SETUID", "CAP_SETGID"]
            for kind in ("bounding", "effective", "permitted")
        }

    bundle = make_bundle("/bin/probe", "readexe", edit=edit)
    install(bundle, programs, "probe")
    probe = bundle / "rootfs" / "bin" / "probe"
    os.chown(probe, 1000, 1000)
    probe.chmod(0o711)
    result = run(gofer, bundle)
    assert result.stdout.strip() == "open Permission denied", result.stderr


def test_huge_xattr_value_rejected(gofer, make_bundle, programs):  # noqa: F811
    bundle = make_bundle("sh", "-c", "touch /tmp/x && /bin/probe bigxattr /tmp/x")
    install(bundle, programs, "probe")
    result = run(gofer, bundle)
    assert result.stdout.strip() == "E2BIG", result.stderr


def test_interpreter_path_must_be_plain(gofer, make_bundle, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: `make test` installs it")
    source = tmp_path / "dyn.c"
    source.write_text("int main(void) { return 0; }\n")
    binary = tmp_path / "dyn"
    built = subprocess.run(
        [
            "gcc",
            "-o",
            str(binary),
            str(source),
            "-Wl,--dynamic-linker=/tmp/../.stockade/exec/x/sh",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot link a test program: {built.stderr[-200:]}")
    bundle = make_bundle("sh", "-c", "/bin/dyn; echo status $?")
    shutil.copy(binary, bundle / "rootfs" / "bin" / "dyn")
    result = run(gofer, bundle)
    assert result.stdout.strip() != "status 0"
    assert "status" in result.stdout


def test_failed_chdir_keeps_the_working_directory(gofer, make_bundle):
    def edit(config):
        config["process"]["user"] = {"uid": 1000, "gid": 1000}
        # A sandbox mount that the user may not enter, but the sentry's root could.
        config["mounts"].append({"destination": "/private", "type": "tmpfs",
                                 "source": "tmpfs", "options": ["mode=700"]})  # fmt: skip

    script = "cd /etc; cd /private 2>/dev/null; pwd; head -n 1 passwd; cd /proc && cd self && pwd"
    bundle = make_bundle("sh", "-c", script, edit=edit)
    result = run(gofer, bundle)
    assert result.stdout.splitlines()[:2] == ["/etc", "root:x:0:0:root:/root:/bin/sh"]


def test_every_path_call_is_served_or_refused():
    """No path call the policy lets through may reach the sandbox's kernel unseen."""
    from stockade.sentry import syscalls, vfs
    from stockade.sentry.policy import SyscallClass, load_policy

    policy = load_policy()
    layer = vfs.PathLayer(None, None)
    covered = set(layer.handlers) | set(vfs.EXEC_CALLS)
    missing = [
        syscalls.name(nr)
        for nr in sorted(vfs.kinds_with_paths())
        if nr in policy.rules
        and policy.rules[nr].cls is not SyscallClass.DENIED
        and nr not in covered
    ]
    assert missing == []


def test_chroot_refused(gofer, make_bundle):
    bundle = make_bundle(
        "sh", "-c", "chroot /tmp /bin/true 2>/dev/null || echo refused"
    )
    result = run(gofer, bundle)
    assert result.stdout.strip() == "refused", result.stderr


# --- the gofer as the default -----------------------------------------------------

DEFAULT = {"STOCKADE_FILE_ACCESS": ""}  # empty: as if unset, so the default applies


def chosen_mode(root, container_id="c1"):  # type: ignore[no-untyped-def]
    state = json.loads((root / container_id / "state.json").read_text())
    return state["settings"]["file_access"]


def test_gofer_is_the_default(stockade, make_bundle, root):
    bundle = make_bundle("true")
    stockade.ok("create", "--bundle", str(bundle), "c1", env=DEFAULT)
    mode = chosen_mode(root)
    stockade.ok("start", "c1")
    stockade.ok("delete", "--force", "c1")
    assert mode == "gofer"


def with_start_hook(config):  # type: ignore[no-untyped-def]
    config["hooks"] = {"startContainer": [{"path": "/bin/true"}]}


def test_default_falls_back_to_direct(stockade, make_bundle, root):
    bundle = make_bundle("true", edit=with_start_hook)
    created = stockade.ok("create", "--bundle", str(bundle), "c1", env=DEFAULT)
    mode = chosen_mode(root)
    stockade.ok("delete", "--force", "c1")
    assert mode == "direct"
    assert "the default --file-access gofer" in created.stderr
    assert "so it uses direct" in created.stderr


def test_chosen_gofer_rejects_start_hooks(gofer, make_bundle, root):
    bundle = make_bundle("true", edit=with_start_hook)
    result = gofer("create", "--bundle", str(bundle), "c1")
    assert result.returncode == 1
    assert "use --file-access=direct for this container" in result.stderr
    assert not (root / "c1").exists()


@pytest.mark.both_file_access
def test_o_path_directory_as_base(stockade, make_bundle, programs):
    bundle = make_bundle("/bin/probe", "opath", "/etc", "passwd")
    install(bundle, programs, "probe")
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    assert result.stdout == "dir ok\n"

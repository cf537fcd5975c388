"""The spec's linux.seccomp profile, enforced on top of the sandbox's own filter."""

from __future__ import annotations

import errno


def profile(*rules, default="SCMP_ACT_ALLOW"):  # type: ignore[no-untyped-def]
    def edit(config):  # type: ignore[no-untyped-def]
        config["linux"]["seccomp"] = {
            "defaultAction": default,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": list(rules),
        }

    return edit


DENY_MKDIR = {
    "names": ["mkdir", "mkdirat"],
    "action": "SCMP_ACT_ERRNO",
    "errnoRet": errno.EACCES,
}


def test_profile_denies_call(stockade, make_bundle):
    bundle = make_bundle("sh", "-c", "mkdir /tmp/x; echo $?; touch /tmp/y && echo touched",
                         edit=profile(DENY_MKDIR))  # fmt: skip
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    assert result.stdout.split() == ["1", "touched"]
    assert "Permission denied" in result.stderr


def test_profile_applies_to_exec(stockade, make_bundle):
    bundle = make_bundle("sleep", "30", edit=profile(DENY_MKDIR))
    stockade.ok("create", "--bundle", str(bundle), "c1")
    stockade.ok("start", "c1")
    result = stockade("exec", "c1", "mkdir", "/tmp/z")
    stockade.ok("delete", "--force", "c1")
    assert result.returncode == 1


def test_profile_with_argument_rule(stockade, make_bundle):
    # kill(2) is refused only when the signal, argument 1, is SIGUSR1 (10).
    rule = {
        "names": ["kill"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": errno.EPERM,
        "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}],
    }
    script = "trap 'echo got-usr2' USR2; kill -USR1 $$; echo usr1=$?; kill -USR2 $$; echo usr2=$?"
    bundle = make_bundle("sh", "-c", script, edit=profile(rule))
    result = stockade.ok("run", "--bundle", str(bundle), "c1")
    assert result.stdout.split() == ["usr1=1", "got-usr2", "usr2=0"]


def test_profile_with_notify_rejected(stockade, make_bundle):
    rule = {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}
    result = stockade(
        "run", "--bundle", str(make_bundle("true", edit=profile(rule))), "c1"
    )
    assert result.returncode == 1
    assert "SCMP_ACT_NOTIFY" in result.stderr


def test_profile_unknown_action_rejected(stockade, make_bundle):
    rule = {"names": ["mkdir"], "action": "SCMP_ACT_SOMETIMES"}
    result = stockade(
        "run", "--bundle", str(make_bundle("true", edit=profile(rule))), "c1"
    )
    assert result.returncode == 1
    assert "SCMP_ACT_SOMETIMES" in result.stderr

"""PID namespaces: the one a spec joins by path, shared with other containers."""

from __future__ import annotations

import time

import pytest
from conftest import join_pid_namespace

pytestmark = pytest.mark.both_file_access


def test_joined_namespace_is_shared(stockade, make_bundle, host_pid_namespace):
    edit = join_pid_namespace(host_pid_namespace)
    bundle = make_bundle("sh", "-c", "echo $$; cat /proc/1/comm; echo end", edit=edit)

    output = stockade.ok("run", "--bundle", str(bundle), "c1").stdout.split()

    assert output[1:] == ["sleep", "end"]
    assert int(output[0]) > 1


def test_pod_member_sees_pod_init(stockade, make_bundle, pod_pid_namespace):
    """A container that joins another's PID namespace, as a pod does, sees its init."""
    edit = join_pid_namespace(pod_pid_namespace)
    script = "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"
    bundle = make_bundle("sh", "-c", script, edit=edit)

    result = stockade("run", "--bundle", str(bundle), "c1")

    assert result.returncode == 0, result.stderr
    assert "sleep 100" in result.stdout


def test_pod_survives_member_exit(stockade, make_bundle, pod_pid_namespace):
    """A member's exit ends its own processes only, not the pod's."""
    bundle = make_bundle("true", edit=join_pid_namespace(pod_pid_namespace))

    stockade.ok("run", "--bundle", str(bundle), "c1")
    time.sleep(0.3)

    assert stockade.state("pod")["status"] == "running"

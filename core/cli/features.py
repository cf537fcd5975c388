import json

import click

from ..process import CAPABILITY_NAMES
from ..sentry.oci_seccomp import ACTIONS, OPERATORS
from ..rootfs import MOUNT_FLAGS, PROPAGATION
from ..spec import NAMESPACE_TYPES, OCI_VERSION


@click.command("features")
def command():
    """Print the OCI features document: what this runtime supports."""
    features = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [],
        "mountOptions": sorted([*MOUNT_FLAGS, *PROPAGATION]),
        "linux": {
            "namespaces": [n for n in NAMESPACE_TYPES if n != "time"],
            "capabilities": [
                f"CAP_{name}" for name in CAPABILITY_NAMES if name != "SYS_PTRACE"
            ],
            "cgroup": {"v1": True, "v2": True, "systemd": False},
            "seccomp": {
                "enabled": True,
                "actions": list(ACTIONS),
                "operators": list(OPERATORS),
                "archs": ["SCMP_ARCH_X86_64"],
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"io.github.stockade.sandbox": "true"},
    }
    click.echo(json.dumps(features, indent=4))

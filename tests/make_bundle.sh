#!/bin/sh
# make_bundle.sh DIR [ARGS...]: write an OCI bundle with a static busybox rootfs.
# The config is `stockade spec`'s defaults with a writable root and ARGS
# (default: sh) as the process.
set -eu
dir=$1
shift
busybox=$(command -v busybox) || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/proc" "$dir/rootfs/dev" \
    "$dir/rootfs/sys" "$dir/rootfs/tmp" "$dir/rootfs/root"
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [ -e "$dir/rootfs/bin/$applet" ] || ln -s busybox "$dir/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/rootfs/etc/passwd"
echo "root:x:0:" > "$dir/rootfs/etc/group"
chmod 1777 "$dir/rootfs/tmp"
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/.venv/bin/python" - "$dir/config.json" "$@" <<'PY'
import json, sys
from stockade.spec import default
config = default(sys.argv[2:] or ["sh"])
config["root"]["readonly"] = False
config["process"]["env"] = ["PATH=/bin", "HOME=/root"]
with open(sys.argv[1], "w") as f:
    json.dump(config, f, indent=2)
PY

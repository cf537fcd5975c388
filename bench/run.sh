#!/bin/bash
# bench/run.sh [COMPARE_OPTIONS...]: benchmark Stockade beside runc, crun,
# runsc-ptrace and a native chroot baseline, in one run of compare.sh.
#
#   sudo bash bench/run.sh           # full profile, about 3 minutes
#   sudo bash bench/run.sh --quick   # smoke test; do not quote its numbers
#
# Extra arguments go to compare.sh unchanged. The markdown report goes to
# docs/benchmarks.md, and results.json, summary.md, compare.log, raw/ and logs/
# go to build/bench/<UTC time>/ (build/bench/latest points to the newest).
# This script installs nothing: `make bench` installs the Debian packages.
# It exits with 2 when a prerequisite is missing, and otherwise with compare.sh's
# status, which is 1 if any runtime failed anything. The report is written and
# lists the failures in that case too.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
compare="$repo/../shared/bench/compare.sh"
stockade="$repo/.venv/bin/stockade"
doc="$repo/docs/benchmarks.md"

if [ ! -f "$compare" ]; then
    echo "bench/run.sh: compare.sh not found at $compare" >&2
    echo "bench/run.sh: the benchmark harness must sit in ../shared/bench/ beside the repository" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "bench/run.sh: must run as root, because compare.sh runs the runtimes, chroot and unshare" >&2
    echo "bench/run.sh: run 'sudo bash bench/run.sh' or 'sudo make bench'" >&2
    exit 2
fi
if [ ! -x "$stockade" ]; then
    echo "bench/run.sh: $stockade not found; run 'make install' first" >&2
    exit 2
fi

missing=""
for tool in python3 hyperfine busybox gcc unshare chroot; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "bench/run.sh: missing tools:$missing" >&2
    echo "bench/run.sh: run 'make bench', or 'apt-get install hyperfine busybox-static gcc util-linux coreutils'" >&2
    exit 2
fi
# compare.sh skips an anchor runtime that is not installed, so only warn.
for tool in runc crun runsc; do
    command -v "$tool" >/dev/null 2>&1 \
        || echo "bench/run.sh: warning: $tool is not installed, so the report has no $tool column" >&2
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$repo/build/bench/$stamp"
mkdir -p "$out"
report="$out/summary.md"  # compare.sh also writes the report it prints on stdout here

stockade_prefix="$stockade --platform=ptrace --file-access=direct"
gofer_prefix="$stockade --platform=ptrace --file-access=gofer"
# The NAME=COMMAND arguments go last: compare.sh's argument parser accepts
# positional arguments only in one group, so options from "$@" must precede them.
cmd=("$compare" --anchors --out "$out" "$@" "stockade=$stockade_prefix"
     "stockade-gofer=$gofer_prefix")
# The command as a reader would type it, for the log and the report.
cmd_text="$compare --anchors --out $out"
if [ $# -gt 0 ]; then
    cmd_text="$cmd_text $*"
fi
cmd_text="$cmd_text stockade='$stockade_prefix' stockade-gofer='$gofer_prefix'"
echo "bench/run.sh: running $cmd_text" >&2

status=0
"${cmd[@]}" >/dev/null || status=$?

if [ ! -f "$out/results.json" ] || [ ! -f "$report" ]; then
    echo "bench/run.sh: compare.sh exited with status $status and wrote no report;" \
        "docs/benchmarks.md is unchanged. See the output above and $out/." >&2
    exit $(( status == 0 ? 1 : status ))
fi

ln -sfn "$stamp" "$repo/build/bench/latest"

# The Summary table (Stockade's medians and ratios) and the failed configs, from results.json.
summary=$(python3 - "$out/results.json" <<'EOF'
import json
import sys

with open(sys.argv[1]) as f:
    data = json.load(f)
rows = {(r["section"], r["metric"], r["config"]): r for r in data["results"]}
configs = [c["name"] for c in data["configs"]]


def median(section, metric, config):
    row = rows.get((section, metric, config))
    return row["median"] if row else None


def ratio(section, metric, config, reference):
    value = median(section, metric, config)
    base = median(section, metric, reference)
    if value is None or not base:
        return "—"
    quotient = value / base
    digits = 0 if quotient >= 100 else 1 if quotient >= 10 else 2
    return f"{quotient:,.{digits}f}×"


def ratios(section, metric, references):
    cells = [f"{ratio(section, metric, 'stockade', r)} {r}" for r in references if r in configs]
    return ", ".join(cells)


print("| measurement | Stockade median | Stockade's ratio to | runsc-ptrace × native |")
print("|---|---|---|---|")
run = median("lifecycle", "run", "stockade")
run_text = f"{run:.1f} ms" if run is not None else "not measured"
print(f"| run /bin/true | {run_text} | "
      f"{ratios('lifecycle', 'run', ['runc', 'crun', 'runsc-ptrace', 'native'])} | "
      f"{ratio('lifecycle', 'run', 'runsc-ptrace', 'native')} |")
for metric in data["meta"]["modes"]:
    value = median("sysbench", metric, "stockade")
    text = f"{value:,.0f} ns/op" if value is not None else "not measured"
    print(f"| sysbench {metric.replace(':', ' ')} | {text} | "
          f"{ratios('sysbench', metric, ['native', 'runc'])} | "
          f"{ratio('sysbench', metric, 'runsc-ptrace', 'native')} |")
pss = median("memory", "tree_pss", "stockade")
pss_text = f"{pss:,.0f} KiB" if pss is not None else "not measured"
print(f"| PSS, whole tree, `sleep` container | {pss_text} | "
      f"{ratios('memory', 'tree_pss', ['runc', 'crun', 'runsc-ptrace', 'native'])} | "
      f"{ratio('memory', 'tree_pss', 'runsc-ptrace', 'native')} |")

# The targets Stockade is built to meet, checked against this run.
def check(passed):
    return "met" if passed else "**missed**"


def within(metric, limit):
    value = median("sysbench", metric, "stockade")
    base = median("sysbench", metric, "native")
    if value is None or not base:
        return "—", "not measured"
    return f"{value / base:.2f}× native", check(value / base <= limit)


print()
print("Targets, checked against this run:")
print()
print("| target | this run | result |")
print("|---|---|---|")
run_runsc = median("lifecycle", "run", "runsc-ptrace")
if run is not None and run_runsc:
    print(f"| run /bin/true faster than runsc-ptrace | {run / run_runsc:.2f}× runsc-ptrace "
          f"| {check(run < run_runsc)} |")
for metric in ("getpid", "read:/tmpfs", "write", "mmap"):
    shown, result = within(metric, 1.2)
    print(f"| passthrough {metric.split(':')[0]} within 1.2× native | {shown} | {result} |")
shown, result = within("spawn", 2.0)
print(f"| fork + exec + wait within 2× native | {shown} | {result} |")
opened = median("sysbench", "open:/tmpfs", "stockade")
opened_native = median("sysbench", "open:/tmpfs", "native")
if opened is not None and opened_native:
    # sysbench's open mode is open + close; close passes through, so the extra
    # time is the mediated openat's.
    extra = (opened - opened_native) / 1000
    print(f"| a mediated openat under 10 µs | {extra:.1f} µs more than native "
          f"| {check(extra < 10)} |")

# The gofer mode: its costs beside direct mode, and its own targets.
if "stockade-gofer" in configs:
    print()
    print("The gofer file-access mode (`stockade-gofer`), in the same run:")
    print()
    print("| measurement | stockade-gofer | stockade (direct) | runsc-ptrace |")
    print("|---|---|---|---|")

    def cell(section, metric, config):
        value = median(section, metric, config)
        base = median(section, metric, "native")
        if value is None or not base:
            return "—"
        return f"{value / base:,.2f}× native"

    gofer_run = median("lifecycle", "run", "stockade-gofer")
    if gofer_run is not None and run:
        print(f"| run /bin/true | {gofer_run / run:.2f}× direct mode | 1× | "
              f"{ratio('lifecycle', 'run', 'runsc-ptrace', 'stockade')} of direct |")
    for metric in data["meta"]["modes"]:
        print(f"| sysbench {metric.replace(':', ' ')} | "
              f"{cell('sysbench', metric, 'stockade-gofer')} | "
              f"{cell('sysbench', metric, 'stockade')} | "
              f"{cell('sysbench', metric, 'runsc-ptrace')} |")
    print()
    print("| gofer target | this run | result |")
    print("|---|---|---|")
    gofer_open = median("sysbench", "open:/tmp", "stockade-gofer")
    native_open = median("sysbench", "open:/tmp", "native")
    if gofer_open is not None and native_open:
        extra = (gofer_open - native_open) / 1000
        print(f"| an open through the gofer under 10 µs | {extra:.1f} µs more than native "
              f"| {check(extra < 10)} |")
    for metric in ("read:/tmp", "write"):
        value = median("sysbench", metric, "stockade-gofer")
        base = median("sysbench", metric, "native")
        if value is not None and base:
            print(f"| {metric.split(':')[0]} within 1.2× native | {value / base:.2f}× native "
                  f"| {check(value / base <= 1.2)} |")

failed = [c for c in data["configs"] if c["status"] != "ok"]
if failed:
    print()
    print("**Failures in this run** (the report below has each one's output tail):")
    print()
    for c in failed:
        for error in c["errors"]:
            print(f"- {c['name']}: {error['what']} failed with exit status {error['rc']}")
EOF
)

# The report's headings move one level down, below this page's title.
{
    echo "# Benchmarks"
    echo
    echo "Generated by \`bench/run.sh\`. It ran compare.sh, the side-by-side OCI"
    echo "runtime benchmark, with Stockade's ptrace platform (in direct and in gofer"
    echo "file-access mode) beside runc, crun and"
    echo "runsc (gVisor, \`--platform=ptrace --network=none\`), and a native"
    echo "baseline: the same static busybox and sysbench binaries run in a"
    echo "\`chroot\`, with no container. All configs take turns in the same run."
    echo
    echo "Command (as root; compare.sh exited with status $status):"
    echo
    echo '```sh'
    echo "$cmd_text" | sed "s|$repo/||g"
    echo '```'
    echo
    echo "Reading the numbers: each ratio cell reads \`× native / × runc\`."
    echo "Quote ratios between configs of this one run, not absolute times: on"
    echo "shared VMs, absolute times can change 2× from one run to the next, while"
    echo "the ratios of one run share its machine conditions. Never divide a number"
    echo "from this page by a number from another run. For \`run /bin/true\`, the"
    echo "ratio to runc means more than the ratio to native, because native is a"
    echo "bare \`chroot\` of about 2 ms. For sysbench, × native is the cost of the"
    echo "syscall path: runc and crun run the payload natively and land at about"
    echo "1×. The JSON with every sample is in \`build/bench/$stamp/results.json\`."
    echo
    echo "## Summary"
    echo
    echo "Stockade's medians and ratios from this run:"
    echo
    echo "$summary"
    echo
    if [ -f "$repo/bench/reading.md" ]; then
        cat "$repo/bench/reading.md"
        echo
    fi
    echo "The rest of this page is compare.sh's report, unchanged except for"
    echo "heading levels and repository paths, which are relative to the repository."
    echo
    sed -e 's/^#/##/' -e "s|$repo/||g" "$report"
} >"$doc"

echo "bench/run.sh: wrote $doc; results in $out" >&2
if [ "$status" -ne 0 ]; then
    echo "bench/run.sh: compare.sh exited with status $status; failed configs:" >&2
    python3 -c '
import json
import sys
for c in json.load(open(sys.argv[1]))["configs"]:
    if c["status"] != "ok":
        for error in c["errors"]:
            print("  %s: %s failed with exit status %s" % (c["name"], error["what"], error["rc"]), file=sys.stderr)
' "$out/results.json"
fi
exit "$status"

#!/usr/bin/env bash
# store-cost.sh — what the cluster store costs a protocol C write on this machine: the demo's two-node pair
# (replctl demo, backing files and Raft logs on tmpfs) without a store (--witness 0: quorum off), with the store
# and its witness process (--witness 1), and with the store whose witness is stopped (SIGSTOP: alpha and beta
# still form a majority, so the roles and leases keep working while the witness uses no CPU). Rounds alternate
# the three; each measures fio 4k randwrite QD32 (IOPS) and QD1 (p50/p99 latency), and the CPU time each repld
# spent per QD32 write (utime + stime from /proc/PID/stat over the run).
#
# With --before REPO (a checkout of an earlier commit, built), its demo pair is a fourth variant, "before".
# --variants picks variants (comma-separated) from: no-store, witness, witness-stopped, and witness-leaseT
# (the store and its witness with lease-timeout T, in tenths of a second, instead of the default 30: a
# node renews its lease every quarter lease and Raft's election timeout is a sixth of it, so a longer lease
# means less periodic Raft traffic; witness-lease600 nearly stops it and shows what that traffic costs).
#
# --settle SECONDS lets each started pair idle that long before the warm-up (JIT warm-up of the store's
# code, which a long-running node has behind it; default 0).
#
# Usage: bench/store-cost.sh [--rounds N] [--runtime SECONDS] [--size SIZE] [--before REPO] [--variants LIST]
#                            [--settle SECONDS] [--dir DIR]
# The table (DIR/table.md) gives medians and the ratio to "no store" (to "before" when it runs). See bench/README.md.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
REPLCTL="$REPO_DIR/bin/replctl"
PY=/usr/bin/python3
ROUNDS=3
RUNTIME=10
SIZE=256MiB
DIR=
BEFORE=
VARIANTS=no-store,witness,witness-stopped
SETTLE=0

die() { echo "store-cost: error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

while (($#)); do
  case $1 in
    --rounds) ROUNDS=${2:?}; shift ;;
    --runtime) RUNTIME=${2:?}; shift ;;
    --size) SIZE=${2:?}; shift ;;
    --dir) DIR=${2:?}; shift ;;
    --before) BEFORE=$(cd "${2:?}" && pwd); shift ;;
    --variants) VARIANTS=${2:?}; shift ;;
    --settle) SETTLE=${2:?}; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $RUNTIME =~ ^[1-9][0-9]*$ ]] || die "--runtime must be a positive integer (seconds)"
[[ $SETTLE =~ ^[0-9]+$ ]] || die "--settle must be a whole number of seconds"
IFS=, read -r -a VARIANT_LIST <<<"$VARIANTS"
for v in "${VARIANT_LIST[@]}"; do
  case $v in
    no-store|witness|witness-stopped|witness-lease[1-9]*) ;;
    *) die "--variants: unknown variant '$v' (no-store, witness, witness-stopped, witness-leaseT)" ;;
  esac
done
command -v fio >/dev/null || die "fio is missing (Debian package fio)"
fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no 'nbd' ioengine (Debian's fio package has it)"
[[ -x $REPLCTL ]] || die "$REPLCTL is missing: build first (mvn -q package -DskipTests)"
[[ -z $BEFORE || -x $BEFORE/bin/replctl ]] || die "$BEFORE/bin/replctl is missing: build that checkout first"
DIR=${DIR:-$REPO_DIR/bench/results/store-cost-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$DIR"
# a tmpfs of its own: the demo takes a path under /dev for a block device, so /dev/shm will not do
(($(id -u) == 0)) || die "needs root (it mounts a tmpfs for the backing files and Raft logs)"
SHM=$(mktemp -d /tmp/store-cost.XXXXXX)
mount -t tmpfs -o size=4g tmpfs "$SHM" || die "cannot mount a tmpfs on $SHM"
CURRENT=
DOWN=$REPLCTL
cleanup() {
  [[ -n $CURRENT ]] && "$DOWN" demo down --dir "$CURRENT" >/dev/null 2>&1 || true
  umount "$SHM" 2>/dev/null || true
  rmdir "$SHM" 2>/dev/null || true
}
trap cleanup EXIT

ticks() {  # ticks PID: utime + stime of the process, in clock ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# run_variant ROUND VARIANT: start the demo, measure, stop it
run_variant() {
  local round=$1 variant=$2 d="$SHM/$2" out="$DIR/r$1-$2" json uri alpha beta wit ctl=$REPLCTL
  local -a opts=(--witness 1)
  case $variant in
    no-store) opts=(--witness 0) ;;
    witness-lease*) opts=(--witness 1 --lease-timeout "${variant#witness-lease}") ;;
    before) opts=(); ctl=$BEFORE/bin/replctl ;;  # no store there
  esac
  rm -rf "$d"
  json=$("$ctl" demo --dir "$d" --size "$SIZE" "${opts[@]}" --detach --json 2>"$out.demo.log") \
    || die "demo ($variant) did not start: see $out.demo.log"
  DOWN=$ctl
  CURRENT=$d
  read -r uri alpha beta wit < <("$PY" -c '
import json, sys
n = {x["name"]: x for x in json.load(sys.stdin)["nodes"]}
print(n["alpha"]["nbd"], n["alpha"]["pid"], n["beta"]["pid"], n.get("witness", {}).get("pid", 0))' <<<"$json")
  if [[ $variant == witness-stopped ]]; then
    kill -STOP "$wit"
  fi
  ((SETTLE > 0)) && sleep "$SETTLE"
  # warm-up (JIT, page cache of the tmpfs files), not recorded
  fio --name=warm --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=32 --size=64M --time_based \
    --runtime=5 --output="$out.warm.json" --output-format=json >/dev/null
  local a0 b0 w0=0 a1 b1 w1=0
  a0=$(ticks "$alpha"); b0=$(ticks "$beta"); ((wit > 0)) && w0=$(ticks "$wit")
  fio --name=qd32 --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=32 --size=64M --time_based \
    --runtime="$RUNTIME" --output="$out.qd32.json" --output-format=json >/dev/null
  a1=$(ticks "$alpha"); b1=$(ticks "$beta"); ((wit > 0)) && w1=$(ticks "$wit")
  fio --name=qd1 --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=1 --size=64M --time_based \
    --runtime="$RUNTIME" --output="$out.qd1.json" --output-format=json >/dev/null
  [[ $variant == witness-stopped ]] && kill -CONT "$wit"
  echo "$round $variant $((a1 - a0)) $((b1 - b0)) $((w1 - w0))" >>"$DIR/cpu.txt"
  "$ctl" demo down --dir "$d" >/dev/null 2>&1 || die "demo down ($variant) failed"
  CURRENT=
  log "round $round $variant done"
}

: >"$DIR/cpu.txt"
for ((r = 1; r <= ROUNDS; r++)); do
  for v in ${BEFORE:+before} "${VARIANT_LIST[@]}"; do
    run_variant "$r" "$v"
  done
done

"$PY" - "$DIR" "$(getconf CLK_TCK)" <<'EOF' | tee "$DIR/table.md"
import json, statistics, sys
d, hz = sys.argv[1], int(sys.argv[2])
cpu = {}
for line in open(f"{d}/cpu.txt"):
    r, v, a, b, w = line.split()
    cpu[(r, v)] = (int(a), int(b), int(w))
order = ["before", "no-store", "witness", "witness-stopped"]
leases = sorted({k[1] for k in cpu if k[1].startswith("witness-lease")}, key=lambda v: int(v[len("witness-lease"):]))
variants = [v for v in order if any(k[1] == v for k in cpu)] + leases
ref = variants[0]
rows = {v: {"iops": [], "p50": [], "p99": [], "cpu": []} for v in variants}
for (r, v), (a, b, w) in cpu.items():
    q32 = json.load(open(f"{d}/r{r}-{v}.qd32.json"))["jobs"][0]["write"]
    q1 = json.load(open(f"{d}/r{r}-{v}.qd1.json"))["jobs"][0]["write"]
    n = q32["total_ios"]
    rows[v]["iops"].append(q32["iops"])
    rows[v]["p50"].append(q1["clat_ns"]["percentile"]["50.000000"] / 1000)
    rows[v]["p99"].append(q1["clat_ns"]["percentile"]["99.000000"] / 1000)
    rows[v]["cpu"].append(tuple(1e6 * t / hz / n for t in (a, b, w)))
med = statistics.median
base = {k: med(rows[ref][k]) for k in ("iops", "p50", "p99")}
print(f"store cost, protocol C pair on tmpfs, {len(rows[ref]['iops'])} rounds (medians; ratio to {ref})\n")
print("| variant | 4k QD32 IOPS | ratio | QD1 p50 µs | ratio | QD1 p99 µs | ratio | CPU µs/write alpha + beta + witness |")
print("|---|---|---|---|---|---|---|---|")
for v in variants:
    x = rows[v]
    i, p, q = med(x["iops"]), med(x["p50"]), med(x["p99"])
    c = [med([t[k] for t in x["cpu"]]) for k in range(3)]
    print(f"| {v} | {i:,.0f} | {i / base['iops']:.2f} | {p:.0f} | {p / base['p50']:.2f} | {q:.0f} | {q / base['p99']:.2f}"
          f" | {c[0]:.0f} + {c[1]:.0f} + {c[2]:.0f} = {sum(c):.0f} |")
EOF
log "raw results in $DIR"

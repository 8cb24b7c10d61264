#!/usr/bin/env bash
# role-latency.sh — how fast roles move through the cluster store: promotion latency (the admin API's
# POST primary, answered once the new term is committed) over N promotions that alternate between two
# data nodes, and the failover time: SIGKILL of the Primary's repld to the first successful promotion
# of the other node (which the store refuses until the dead Primary's lease has expired).
#
# Usage: bench/role-latency.sh [--promotions N] [--failovers N] [--lease-timeout TENTHS] [--dir DIR] [--out FILE]
# A local cluster from `replctl demo` (two data nodes and a witness, loopback). Needs curl.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
REPLD="$REPO_DIR/bin/repld"
REPLCTL="$REPO_DIR/bin/replctl"
PROMOTIONS=100
FAILOVERS=5
DIR=
OUTFILE=
LEASE=

die() { echo "role-latency: error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

while (($#)); do
  case $1 in
    --promotions) PROMOTIONS=$2; shift ;;
    --failovers) FAILOVERS=$2; shift ;;
    --dir) DIR=$2; shift ;;
    --out) OUTFILE=$2; shift ;;
    --lease-timeout) LEASE=$2; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
[[ -x $REPLD ]] || die "$REPLD is missing: build first (mvn -q -DskipTests package)"
DIR=${DIR:-$REPO_DIR/bench/results/roles-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$DIR"
D="$DIR/cluster"
RESTARTED=()
cleanup() {
  "$REPLCTL" demo down --dir "$D" >/dev/null 2>&1 || true
  local p
  for p in "${RESTARTED[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

log "starting a 2-node cluster with a witness in $D"
"$REPLCTL" demo --dir "$D" --size 64MiB ${LEASE:+--lease-timeout "$LEASE"} --detach --json >"$DIR/demo.json" \
  2>"$DIR/demo.log" \
  || { cat "$DIR/demo.log" >&2; die "replctl demo failed"; }
lease_ms=$(python3 -c "import tomllib;c=tomllib.load(open('$D/cluster.toml','rb'));print(c['cluster'].get('lease-timeout',30)*100)")

sock() { echo "$D/$1.sock"; }
post() {  # post NODE VERB: prints "HTTPCODE SECONDS"
  curl -s -o "$DIR/last-answer.json" -w '%{http_code} %{time_total}\n' --unix-socket "$(sock "$1")" \
    -X POST -H 'Content-Type: application/json' -d '{}' "http://node/resources/r0/$2"
}
role() {
  curl -s --unix-socket "$(sock "$1")" http://node/status | python3 -c \
    "import json,sys;print(json.load(sys.stdin)['resources'][0]['role'])" 2>/dev/null || echo "?"
}
wait_for() {  # wait_for SECONDS WHAT CMD...
  local to=$1 what=$2; shift 2
  local end=$((SECONDS + to))
  until "$@"; do
    ((SECONDS < end)) || die "timed out after ${to}s waiting for $what"
    sleep 0.2
  done
}
in_sync_both() {
  curl -s --unix-socket "$(sock alpha)" http://node/cluster | python3 -c \
    "import json,sys;r=json.load(sys.stdin)['resources'][0];sys.exit(0 if sorted(r['in_sync'])==['alpha','beta'] else 1)" \
    2>/dev/null
}
established() {  # established NODE: Connected, Established, UpToDate
  curl -s --unix-socket "$(sock "$1")" http://node/status | python3 -c "
import json,sys
r=json.load(sys.stdin)['resources'][0];p=r['peers'][0]
sys.exit(0 if r['disk']=='UpToDate' and p['replication']=='Established' and p['peer_disk']=='UpToDate' else 1)" \
    2>/dev/null
}

# ---- promotion latency
log "promotion latency: $PROMOTIONS promotions alternating between alpha and beta"
: >"$DIR/promotions.txt"
primary=alpha
for ((i = 0; i < PROMOTIONS; i++)); do
  other=$([[ $primary == alpha ]] && echo beta || echo alpha)
  read -r code _ < <(post "$primary" secondary)
  [[ $code == 200 ]] || die "secondary on $primary: HTTP $code: $(cat "$DIR/last-answer.json")"
  read -r code t < <(post "$other" primary)
  [[ $code == 200 ]] || die "primary on $other: HTTP $code: $(cat "$DIR/last-answer.json")"
  echo "$t" >>"$DIR/promotions.txt"
  primary=$other
done

# ---- failover after SIGKILL of the Primary
log "failover: $FAILOVERS x SIGKILL of the Primary, then promote the other node every 50 ms"
: >"$DIR/failovers.txt"
for ((i = 0; i < FAILOVERS; i++)); do
  wait_for 120 "both nodes in sync" in_sync_both
  wait_for 60 "alpha and beta Established" established "$primary"
  other=$([[ $primary == alpha ]] && echo beta || echo alpha)
  leader=$(curl -s --unix-socket "$(sock "$other")" http://node/cluster | python3 -c \
    "import json,sys;print(json.load(sys.stdin).get('leader'))")
  pid=$(python3 - "$D" "$primary" <<'PY'
import os, sys
d, n = sys.argv[1], sys.argv[2]
print(open(os.path.join(d, n + ".pid")).read().strip())
PY
)
  t0=$(date +%s.%N)
  kill -KILL "$pid"
  refused=0
  while :; do
    read -r code _ < <(post "$other" primary)
    [[ $code == 200 ]] && break
    refused=$((refused + 1))
    sleep 0.05
  done
  t1=$(date +%s.%N)
  dt=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
  echo "$dt $primary $leader $refused" >>"$DIR/failovers.txt"
  log "  killed $primary (Raft leader: $leader): $other Primary after ${dt}s ($refused refusals)"
  # restart the killed node; it rejoins as Secondary and resyncs
  "$REPLD" --config "$D/cluster.toml" --node "$primary" >>"$D/$primary.log" 2>&1 </dev/null &
  echo $! >"$D/$primary.pid"
  RESTARTED+=($!)
  primary=$other
done

# ---- the table
python3 - "$DIR" "$lease_ms" "$PROMOTIONS" <<'PY' | tee "$DIR/table.md"
import statistics, sys
d, lease_ms, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p = sorted(float(x) * 1000 for x in open(f"{d}/promotions.txt"))
def pct(v, q):
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
print(f"| measurement | n | p50 | p99 | min | max |")
print(f"|---|---:|---:|---:|---:|---:|")
print(f"| promotion: POST primary → committed (ms) | {len(p)} | {pct(p,.5):.1f} | {pct(p,.99):.1f} | {p[0]:.1f} | {p[-1]:.1f} |")
f = [l.split() for l in open(f"{d}/failovers.txt")]
t = sorted(float(x[0]) for x in f)
print(f"| failover: SIGKILL of the Primary → other node Primary (s), lease {lease_ms/1000:.1f} s | {len(t)} | "
      f"{statistics.median(t):.2f} | – | {t[0]:.2f} | {t[-1]:.2f} |")
print()
for x in f:
    print(f"- killed {x[1]} (Raft leader then: {x[2]}): {x[0]} s, {x[3]} refused attempts before")
PY
[[ -n $OUTFILE ]] && cp "$DIR/table.md" "$OUTFILE"
log "wrote $DIR/table.md"

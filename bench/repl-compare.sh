#!/usr/bin/env bash
# repl-compare.sh — the cost of replication: fio (nbd engine) against a plain `repld serve` export and against
# replicated 2-node clusters (peer down; protocol A, B, C on loopback; protocol C to a peer in a network
# namespace behind netem), in one run with interleaved rounds; then the resync throughput (full and bitmap).
#
# Usage: bench/repl-compare.sh [--rounds N] [--runtime SECONDS] [--size SIZE] [--media tmpfs,disk]
#                              [--configs plain,disconnected,A,B,C,C-netns] [--resync lo,netns|none]
#                              [--resync-size SIZE] [--netem-delay 0.5ms] [--warmup SECONDS] [--quorum witness|off]
#                              [--dir DIR] [--out FILE]
# See bench/README.md ("Replication overhead") for what is measured and how to read the table.
set -euo pipefail

CMDLINE="$0$(printf ' %q' "$@")"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
REPLD="$REPO_DIR/bin/repld"
REPLCTL="$REPO_DIR/bin/replctl"
PY=/usr/bin/python3            # Debian's python3 (stdlib only), not a pyenv shim
PORT_BASE=${REPL_COMPARE_PORT_BASE:-10940}
RES=r0                         # the replicated resource, also its NBD export name
PLAIN_EXPORT=disk              # the plain export's name

ROUNDS=3
RUNTIME=15
SIZE=1G
MEDIA=tmpfs
CONFIGS=plain,disconnected,A,B,C,C-netns
RESYNC=lo,netns
RESYNC_SIZE=256M
NETEM_DELAY=0.5ms
QUORUM=witness
WARMUP=5
DIR=
OUTFILE=

ALL_CONFIGS=(plain disconnected A B C C-netns)
# name|fio rw|bs|iodepth|label
WORKLOADS=(
  "randwrite-4k-qd32|randwrite|4k|32|4k randwrite QD32"
  "seqwrite-1m-qd8|write|1M|8|1M seq write QD8"
  "randwrite-4k-qd1|randwrite|4k|1|4k randwrite QD1"
)

usage() {
  cat <<EOF
Usage: $(basename "$0") [options]
  --rounds N            interleaved rounds (default $ROUNDS); the table shows medians
  --runtime SECONDS     fio runtime per run (default $RUNTIME)
  --size SIZE           volume size per configuration, e.g. 256M, 1G (default $SIZE)
  --media LIST          comma list of tmpfs,disk (default $MEDIA)
  --configs LIST        comma list of ${ALL_CONFIGS[*]} (default $CONFIGS); plain is always included
  --resync LIST         resync measurements over lo (loopback) and/or netns, or none (default $RESYNC)
  --resync-size SIZE    region written while the peer is disconnected, for the bitmap resync (default $RESYNC_SIZE,
                        at most --size)
  --netem-delay DELAY   netem delay per direction on the namespace link, e.g. 0.5ms, 500us; 0 = no qdisc
                        (default $NETEM_DELAY, i.e. about 1 ms round trip)
  --warmup SECONDS      unrecorded 4k randwrite QD32 per configuration after start, 0 = none (default $WARMUP)
  --quorum witness|off  the replicated clusters run with the cluster store and a witness process (roles and
                        in-sync changes committed by Raft; the data path does not touch it), or without a
                        store, as DRBD without quorum (default $QUORUM)
  --dir DIR             directory for raw fio JSON, logs and results.json (default bench/results/repl-<date>)
  --out FILE            also write the markdown table to FILE (it is always written to DIR/table.md)
Env: REPL_COMPARE_PORT_BASE (first port to try, default 10940; busy ports are skipped)
Needs root when C-netns or the netns resync is selected (network namespace, veth, tc netem).
EOF
}

die() { echo "repl-compare: error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

while (($#)); do
  opt=$1; val=
  case $opt in
    --*=*) val=${opt#*=}; opt=${opt%%=*} ;;
    -h|--help) usage; exit 0 ;;
  esac
  case $opt in
    --rounds|--runtime|--size|--media|--configs|--resync|--resync-size|--netem-delay|--warmup|--dir|--out|--quorum)
      if [[ -z $val ]]; then (($# >= 2)) || die "$opt needs a value"; val=$2; shift; fi ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  case $opt in
    --rounds) ROUNDS=$val ;; --runtime) RUNTIME=$val ;; --size) SIZE=$val ;; --media) MEDIA=$val ;;
    --configs) CONFIGS=$val ;; --resync) RESYNC=$val ;; --resync-size) RESYNC_SIZE=$val ;;
    --netem-delay) NETEM_DELAY=$val ;; --warmup) WARMUP=$val ;; --dir) DIR=$val ;; --out) OUTFILE=$val ;;
    --quorum) [[ $val == witness || $val == off ]] || die "--quorum is witness or off, not $val"; QUORUM=$val ;;
  esac
  shift
done

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $RUNTIME =~ ^[1-9][0-9]*$ ]] || die "--runtime must be a positive integer (seconds)"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer (seconds)"

size_bytes() {  # 1G, 256M, 512MiB, 1048576 -> bytes (binary units)
  local s=${1^^} n u
  [[ $s =~ ^([0-9]+)([KMGT]?)(I?B)?$ ]] || return 1
  n=${BASH_REMATCH[1]}; u=${BASH_REMATCH[2]}
  case $u in K) n=$((n << 10)) ;; M) n=$((n << 20)) ;; G) n=$((n << 30)) ;; T) n=$((n << 40)) ;; esac
  echo "$n"
}
SIZE_BYTES=$(size_bytes "$SIZE") || die "bad --size '$SIZE' (use e.g. 256M or 1G)"
((SIZE_BYTES >= 16 << 20)) || die "--size must be at least 16M"
((SIZE_BYTES % 4096 == 0)) || die "--size must be a multiple of 4 KiB"
RESYNC_BYTES=$(size_bytes "$RESYNC_SIZE") || die "bad --resync-size '$RESYNC_SIZE'"
((RESYNC_BYTES > 0 && RESYNC_BYTES % 4096 == 0)) || die "--resync-size must be a positive multiple of 4 KiB"
((RESYNC_BYTES <= SIZE_BYTES)) || RESYNC_BYTES=$SIZE_BYTES

DELAY_MODE=netem
delay_us() {  # delay_us 0.5ms|500us -> 500
  python3 -c 'import sys,re; m=re.fullmatch(r"([0-9.]+)(ms|us)", sys.argv[1]); v=float(m.group(1)); print(int(round(v*1000 if m.group(2)=="ms" else v)))' "$1"
}
if [[ $NETEM_DELAY =~ ^0*(\.0*)?(ms|us)?$ ]]; then
  NETEM_DELAY=0
elif [[ ! $NETEM_DELAY =~ ^[0-9]+(\.[0-9]+)?(ms|us)$ ]]; then
  die "bad --netem-delay '$NETEM_DELAY' (use e.g. 0.5ms, 500us, or 0 for no qdisc)"
fi

IFS=, read -r -a MEDIA_LIST <<<"$MEDIA"
((${#MEDIA_LIST[@]})) || die "--media is empty"
for m in "${MEDIA_LIST[@]}"; do [[ $m == tmpfs || $m == disk ]] || die "unknown medium '$m' (tmpfs, disk)"; done
IFS=, read -r -a _cfgs <<<"$CONFIGS"
CFG_LIST=(plain)                  # in the canonical order, plain first (it is the reference of every ratio)
for c in "${ALL_CONFIGS[@]}"; do
  [[ $c == plain ]] && continue
  [[ " ${_cfgs[*]} " == *" $c "* ]] && CFG_LIST+=("$c")
done
for c in "${_cfgs[@]}"; do
  [[ " ${ALL_CONFIGS[*]} " == *" $c "* ]] || die "unknown configuration '$c' (${ALL_CONFIGS[*]})"
done
if [[ $RESYNC == none ]]; then RESYNC_LIST=(); else IFS=, read -r -a RESYNC_LIST <<<"$RESYNC"; fi
for p in "${RESYNC_LIST[@]}"; do [[ $p == lo || $p == netns ]] || die "unknown resync path '$p' (lo, netns, none)"; done

has_cfg() { [[ " ${CFG_LIST[*]} " == *" $1 "* ]]; }
has_resync() { [[ " ${RESYNC_LIST[*]} " == *" $1 "* ]]; }
NEED_NETNS=0
if has_cfg C-netns || has_resync netns; then NEED_NETNS=1; fi

label_of() {
  case $1 in
    plain) echo "plain (repld serve)" ;;
    disconnected) echo "replicated, peer down" ;;
    A|B|C) echo "protocol $1, loopback" ;;
    C-netns) if [[ $NETEM_DELAY == 0 ]]; then echo "protocol C, netns veth (no delay)"
             else echo "protocol C, netns +$NETEM_DELAY each way$(delay_note)"; fi ;;
    lo) echo "loopback" ;;
    netns) if [[ $NETEM_DELAY == 0 ]]; then echo "netns veth (no delay)"; else echo "netns +$NETEM_DELAY each way$(delay_note)"; fi ;;
  esac
}

delay_note() {  # how the namespace link's delay is made
  if [[ $DELAY_MODE == repld ]]; then echo " (injected by repld: no netem)"; else echo " (netem)"; fi
}

# ---------------------------------------------------------------- prerequisites
need() {  # need CMD DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 || MISSING+=("$1 (Debian package: $2)")
}
MISSING=()
need fio fio
need ss iproute2
need timeout coreutils
need java openjdk-17-jre-headless
[[ -x $PY ]] || MISSING+=("$PY (Debian package: python3)")
if ((NEED_NETNS)); then
  need ip iproute2
  need tc iproute2
fi
if ((${#MISSING[@]})); then
  printf 'repl-compare: error: missing tool: %s\n' "${MISSING[@]}" >&2
  echo "repl-compare: install with: apt-get install <package>" >&2
  exit 1
fi
fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no 'nbd' ioengine (Debian's fio package has it; it needs libnbd0)"
for f in "$REPO_DIR/cluster/target/cluster.jar" "$REPO_DIR/replctl/target/replctl.jar"; do
  [[ -f $f ]] || die "$f is missing: build first with (cd $REPO_DIR && mvn -q -o -DskipTests package)"
done
[[ -x $REPLD && -x $REPLCTL ]] || die "$REPLD or $REPLCTL is missing or not executable"
if ((NEED_NETNS)) && ((EUID != 0)); then
  die "C-netns and the netns resync need root (ip netns, veth, tc); run as root or leave them out:" \
    "--configs plain,disconnected,A,B,C --resync lo"
fi

# ---------------------------------------------------------------- output layout
if [[ -z $DIR ]]; then DIR="$SCRIPT_DIR/results/repl-$(date +%Y%m%d-%H%M%S)"; fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
mkdir -p "$DIR/raw" "$DIR/logs"
RUNS="$DIR/runs.tsv"              # medium config workload round json fio_rc note
INCIDENTS="$DIR/incidents.tsv"    # medium config text
RESYNCS="$DIR/resync.tsv"         # medium path round kind bytes sync_s wall_s attempts note
FAILS="$DIR/failures.tsv"         # medium config reason
META="$DIR/meta.tsv"
: >"$RUNS"; : >"$INCIDENTS"; : >"$RESYNCS"; : >"$FAILS"; : >"$META"
TOOLS=$(mktemp -d /tmp/repl-compare.XXXXXX)

# ---------------------------------------------------------------- process bookkeeping / cleanup
declare -A PID_ID=()       # pid -> "comm starttime" recorded at start, re-checked before any kill
declare -A PID_WHAT=()     # pid -> what it is, for messages
ALL_PIDS=()
TMP_DIRS=("$TOOLS")
NETNS=                     # the network namespace this script created
VETH_HOST=

proc_id() {  # "comm starttime" of a live pid, or empty
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  local comm=${stat#*(}; comm=${comm%)*}
  local rest=${stat##*) }
  local -a f; read -r -a f <<<"$rest"
  [[ ${f[0]} == Z ]] && return 0   # a zombie has exited
  echo "$comm ${f[19]}"
}
register_pid() { PID_ID[$1]=$(proc_id "$1"); PID_WHAT[$1]=$2; ALL_PIDS+=("$1"); }
# same_proc PID: still the process we started? Compares the start time only: bin/repld execs java (and
# `ip netns exec` execs bin/repld), which changes the command name but not the start time.
same_proc() { local now; now=$(proc_id "$1"); [[ -n ${PID_ID[$1]:-} && -n $now && ${now##* } == "${PID_ID[$1]##* }" ]]; }

stop_pid() {  # SIGTERM, wait up to 15 s, then SIGKILL; only a pid this script registered
  local pid=$1 i
  [[ -n ${PID_ID[$pid]:-} ]] || return 0
  if same_proc "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do same_proc "$pid" || break; sleep 0.1; done
    if same_proc "$pid"; then
      log "pid $pid (${PID_WHAT[$pid]}) ignored SIGTERM for 15s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  { wait "$pid"; } 2>/dev/null || true
  unset "PID_ID[$pid]"
}

cleanup() {
  local rc=$? i d
  set +e
  trap - EXIT INT TERM
  for ((i = ${#ALL_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${ALL_PIDS[$i]}"; done
  if [[ -n $VETH_HOST ]]; then ip link del "$VETH_HOST" 2>/dev/null; fi
  if [[ -n $NETNS ]]; then ip netns del "$NETNS" 2>/dev/null; fi
  for d in "${TMP_DIRS[@]}"; do [[ -n $d && -d $d ]] && rm -rf -- "$d"; done
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---------------------------------------------------------------- helper (admin API over the Unix socket)
# `replctl status --json` prints the node's GET /status; polling it every 0.2 s would start a JVM each time
# (about 0.5 s of CPU on this 2-core machine, during the very resync being timed), so status polls and the
# event stream read the same admin API with this small client instead. Verbs go through bin/replctl.
cat >"$TOOLS/admin.py" <<'EOF'
import http.client, json, os, socket, sys, time

class UnixConn(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__('localhost', timeout=timeout)
        self.path = path
    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s

def status(sock):
    c = UnixConn(sock)
    try:
        c.request('GET', '/status')
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f'HTTP {r.status}: {body[:200]!r}')
        return json.loads(body)
    finally:
        c.close()

def res0(st):
    for r in st.get('resources', []):
        if r.get('name') == os.environ.get('RES', 'r0'):
            return r
    return None

def summary(st):
    r = res0(st) if st else None
    if r is None:
        return 'no resource in status' if st else 'no answer'
    s = f"up={r.get('up')} role={r.get('role')} disk={r.get('disk')}"
    if r.get('error'):
        s += f" error={r['error']!r}"
    for p in r.get('peers', []):
        s += (f" | {p['peer']}: {p['connection']} {p['replication']} peer-disk={p['peer_disk']} "
              f"oos={p['out_of_sync_bytes']} rs_sent={p['resync_sent_bytes']}")
        if p.get('last_error'):
            s += f" last-error={p['last_error']!r}"
    return s

def matches(st, spec):
    r = res0(st)
    if r is None:
        return False
    p = (r.get('peers') or [None])[0]
    for item in spec.split(','):
        k, _, v = item.partition('=')
        if k == 'up':
            ok = r.get('up') is True
        elif k == 'sync-started':   # a resync runs, or has already finished
            ok = p is not None and (p.get('replication') in ('WFBitMapS', 'SyncSource', 'PausedSyncS') or
                                    (p.get('replication') == 'Established' and p.get('peer_disk') == 'UpToDate'))
        elif k == 'role':
            ok = r.get('role') == v
        elif k == 'disk':
            ok = r.get('disk') == v
        elif k in ('conn', 'repl', 'pdisk'):
            key = {'conn': 'connection', 'repl': 'replication', 'pdisk': 'peer_disk'}[k]
            ok = p is not None and p.get(key) == v
        else:
            raise SystemExit(f'bad spec {item}')
        if not ok:
            return False
    return True

def alive(pid):
    try:
        st = open(f'/proc/{pid}/stat').read()
    except OSError:
        return False
    return st[st.rindex(')') + 2] != 'Z'

cmd = sys.argv[1]
if cmd == 'status':            # status SOCK [FIELD...]: the JSON, or the peer's counters
    st = status(sys.argv[2])
    if len(sys.argv) > 3:
        p = res0(st)['peers'][0]
        print(' '.join(str(p[f]) for f in sys.argv[3:]))
    else:
        print(json.dumps(st))
elif cmd == 'summary':         # summary SOCK: one line
    try:
        print(summary(status(sys.argv[2])))
    except Exception as e:
        print(f'no answer from {sys.argv[2]}: {e}')
elif cmd == 'wait':            # wait SOCK SPEC TIMEOUT PID...: poll every 0.2 s
    sock, spec, timeout = sys.argv[2], sys.argv[3], float(sys.argv[4])
    pids = sys.argv[5:]
    t0 = time.monotonic(); last = None
    while True:
        try:
            last = status(sock)
            if matches(last, spec):
                print(f'{time.monotonic() - t0:.3f}')
                sys.exit(0)
        except Exception as e:
            last = None; err = e
        for pid in pids:
            if not alive(pid):
                print(f'process {pid} exited while waiting for {spec}', file=sys.stderr)
                sys.exit(2)
        if time.monotonic() - t0 > timeout:
            print(f'not {spec} after {timeout:.0f} s: {summary(last) if last else err}', file=sys.stderr)
            sys.exit(1)
        time.sleep(0.2)
elif cmd == 'events':          # events SOCK FILE: append the event stream, one JSON line each, until killed
    out = open(sys.argv[3], 'ab', buffering=0)
    c = UnixConn(sys.argv[2], timeout=None)
    c.request('GET', '/events')
    r = c.getresponse()
    while True:
        line = r.readline()
        if not line:
            break
        out.write(line if line.endswith(b'\n') else line + b'\n')
elif cmd == 'drops':           # drops FILE FROM_LINE: connections lost (Connected -> anything else) after line FROM
    n = 0; first = None; prev = None
    for i, l in enumerate(open(sys.argv[2], errors='replace')):
        try:
            e = json.loads(l)
        except ValueError:
            continue
        if e.get('object') != 'connection':
            continue
        c = e.get('connection')
        if i >= int(sys.argv[3]) and e.get('type') == 'change' and prev == 'Connected' and c != 'Connected':
            n += 1
            if first is None:
                first = f"{e.get('time')} {c}" + (f": {e['last_error']}" if e.get('last_error') else '')
        prev = c
    print(n, first or '')
elif cmd == 'synctime':        # synctime FILE FROM_LINE: the last resync's start/end from the node's events
    from datetime import datetime
    def ts(e):
        t = e['time'].rstrip('Z')
        frac = ''
        if '.' in t:
            t, frac = t.split('.')
        return datetime.fromisoformat(t).timestamp() + (float('0.' + frac) if frac else 0.0)
    evs = []
    for i, l in enumerate(open(sys.argv[2], errors='replace')):
        if i < int(sys.argv[3]):
            continue
        try:
            evs.append(json.loads(l))
        except ValueError:
            pass
    SYNC = ('WFBitMapS', 'SyncSource', 'PausedSyncS')
    start = end = None; attempts = 0; prev = None
    for e in evs:
        if e.get('object') != 'peer-device' or e.get('type') != 'change':
            continue
        rep = e.get('replication')
        if rep in SYNC and prev not in SYNC:
            attempts += 1
            start = ts(e); end = None
        if rep == 'Established' and e.get('peer_disk') == 'UpToDate' and start is not None and end is None:
            end = ts(e)
        prev = rep
    if start is None or end is None:
        print('none none', attempts)
    else:
        print(f'{end - start:.4f}', attempts)
EOF
ADMIN() { RES=$RES "$PY" "$TOOLS/admin.py" "$@"; }

# ---------------------------------------------------------------- helpers
port_busy() { [[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]]; }
NEXT_PORT=$PORT_BASE
alloc_port() {
  while port_busy "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
  PORT=$NEXT_PORT; NEXT_PORT=$((NEXT_PORT + 1))
}
log_tail() {  # log_tail FILE [N]: the last lines, indented, on stderr
  echo "---- last ${2:-25} lines of $1:" >&2
  tail -n "${2:-25}" "$1" 2>/dev/null | sed 's/^/    /' >&2 || true
  echo "----" >&2
}
fail_node() {  # fail_node LOG MESSAGE...: the whole run stops, loudly
  local lf=$1; shift
  echo "repl-compare: error: $*" >&2
  log_tail "$lf" 40
  exit 1
}
free_bytes() { df -B1 --output=avail "$1" | tail -n1 | tr -d ' '; }

make_image() {  # make_image SEED PATH MEDIUM: a copy of the seed (SIZE_BYTES from /dev/urandom)
  cp --sparse=never "$1" "$2"
  if [[ $3 == disk ]]; then   # durable, then out of the page cache so every configuration starts cold
    "$PY" -c 'import os,sys
fd=os.open(sys.argv[1],os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)' "$2"
  fi
}

# ---------------------------------------------------------------- network namespace (C-netns, netns resync)
setup_netns() {
  local x i out
  NETNS="rbench-$$"
  VETH_HOST="rbh$$"; VETH_NS="rbn$$"
  for ((i = 0; i < 200; i++)); do     # a 10.250.X.0/30 no interface uses yet
    x=$(((($$ + i) % 200) + 20))
    [[ -z $(ip -4 -o addr show 2>/dev/null | grep -F " 10.250.$x.") ]] && break
  done
  HOST_IP="10.250.$x.1"; NS_IP="10.250.$x.2"
  ip netns add "$NETNS" || { NETNS=; die "ip netns add rbench-$$ failed"; }
  ip link add "$VETH_HOST" type veth peer name "$VETH_NS" || { VETH_HOST=; die "ip link add (veth) failed"; }
  ip link set "$VETH_NS" netns "$NETNS"
  ip addr add "$HOST_IP/30" dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  ip -n "$NETNS" addr add "$NS_IP/30" dev "$VETH_NS"
  ip -n "$NETNS" link set "$VETH_NS" up
  ip -n "$NETNS" link set lo up
  if [[ $NETEM_DELAY != 0 ]]; then
    # the same delay on both egress sides: host -> namespace on the host's veth, namespace -> host on the
    # namespace's veth, so each direction is delayed once (round trip = 2 x delay)
    if ! out=$(tc qdisc add dev "$VETH_HOST" root netem delay "$NETEM_DELAY" 2>&1) ||
       ! out=$(tc -n "$NETNS" qdisc add dev "$VETH_NS" root netem delay "$NETEM_DELAY" 2>&1); then
      if [[ $out == *"qdisc kind is unknown"* ]]; then
        # no netem in this kernel: both repld processes of the namespace configs delay every frame they
        # receive by the same amount instead (REPLSTOR_FAULTS=recv-delay-us), in order, per direction
        tc qdisc del dev "$VETH_HOST" root 2>/dev/null || true
        DELAY_MODE=repld
        log "this kernel ($(uname -r)) has no netem qdisc; the namespace link's ${NETEM_DELAY} per direction is" \
          "injected by repld on receipt instead (REPLSTOR_FAULTS=recv-delay-us=$(delay_us "$NETEM_DELAY"))"
      else
        die "tc qdisc add ... netem delay $NETEM_DELAY failed: $out"
      fi
    fi
  fi
  local ping_line=
  if command -v ping >/dev/null 2>&1; then
    ping_line=$(ping -n -q -c 10 -i 0.05 "$NS_IP" 2>&1 | tail -n1) || die "cannot ping $NS_IP in $NETNS: $ping_line"
  fi
  RTT_LINE=${ping_line:-"(ping not installed)"}
  QDISC_LINE="host $(tc qdisc show dev "$VETH_HOST" | head -n1 | tr -s ' '); ns $(tc -n "$NETNS" qdisc show dev "$VETH_NS" | head -n1 | tr -s ' ')"
  log "netns $NETNS: host $VETH_HOST $HOST_IP <-> $VETH_NS $NS_IP; delay ${NETEM_DELAY} per direction ($DELAY_MODE); ping: $RTT_LINE"
  log "netns qdiscs: $QDISC_LINE"
}

# ---------------------------------------------------------------- clusters
# Everything about one cluster (or the plain server) is kept under a key: "MEDIUM/CONFIG".
declare -A K_WD=() K_CONF=() K_NBD=() K_ASOCK=() K_BSOCK=() K_APID=() K_BPID=() K_ALOG=() K_BLOG=()
declare -A K_EVFILE=() K_EVPID=() K_EVMARK=() K_FAILED=()
declare -A K_WPID=() K_WSOCK=()   # the witness of a configuration (--quorum witness)
RAFT_A= RAFT_B= RAFT_W=           # the raft addresses of the configuration being written

write_config() {  # write_config FILE CLUSTER PROTO A_ADDR A_NBD A_SOCK A_DISK B_ADDR B_NBD B_SOCK B_DISK
  cat >"$1" <<EOF
# written by bench/repl-compare.sh
[cluster]
name = "$2"
$(if [[ $QUORUM == witness ]]; then echo 'quorum = "majority"'; echo 'shared-secret = "repl-compare"'; else echo 'quorum = "off"'; fi)

[[node]]
name = "alpha"
id = 0
address = "$4"
nbd = "$5"
admin = "$6"
$(if [[ $QUORUM == witness ]]; then echo "raft = \"$RAFT_A\""; echo "raft-dir = \"${1%/*}/raft-alpha\""; fi)

[[node]]
name = "beta"
id = 1
address = "$8"
nbd = "$9"
admin = "${10}"
$(if [[ $QUORUM == witness ]]; then echo "raft = \"$RAFT_B\""; echo "raft-dir = \"${1%/*}/raft-beta\""; fi)
$(if [[ $QUORUM == witness ]]; then printf '\n[[node]]\nname = "witness"\nid = 2\nrole = "witness"\nadmin = "%s"\nraft = "%s"\nraft-dir = "%s"\n' "${1%/*}/witness.sock" "$RAFT_W" "${1%/*}/raft-witness"; fi)

[[resource]]
name = "$RES"
size = $SIZE_BYTES
protocol = "$3"
connect-int = 1
ping-int = 1
timeout = 9
ping-timeout = 10
c-max-rate = "4G"
resync-rate = "4G"

  [resource.on.alpha]
  disk = "$7"

  [resource.on.beta]
  disk = "${11}"
EOF
}

create_md() {  # create_md KEY NODE
  local key=$1 node=$2 out rc=0
  out=$("$REPLCTL" create-md "$RES" --force --config "${K_CONF[$key]}" --node "$node" 2>&1) || rc=$?
  echo "$(date +%T) $key: replctl create-md $RES --force --node $node -> rc $rc: $out" >>"$DIR/logs/replctl.log"
  ((rc == 0)) || die "$key: replctl create-md $RES --node $node failed (rc $rc): $out"
}

replctl_verb() {  # replctl_verb KEY SOCK VERB [ARGS...]; primary is retried for 30 s (the store may be electing)
  local key=$1 sock=$2 verb=$3 out rc tries=0; shift 3
  while :; do
    rc=0
    out=$("$REPLCTL" "$verb" "$RES" "$@" --admin "$sock" 2>&1) || rc=$?
    echo "$(date +%T) $key: replctl $verb $RES $* -> rc $rc: $out" >>"$DIR/logs/replctl.log"
    ((rc != 0)) && [[ $verb == primary && $QUORUM == witness ]] && ((++tries < 60)) || break
    sleep 0.5
  done
  REPLCTL_OUT=$out
  return "$rc"
}

start_node() {  # start_node KEY NODE INNS: start repld, wait until its resource is up
  local key=$1 node=$2 inns=$3 pid lf sock t
  if [[ $node == alpha ]]; then lf=${K_ALOG[$key]}; sock=${K_ASOCK[$key]}; else lf=${K_BLOG[$key]}; sock=${K_BSOCK[$key]}; fi
  echo "==== $(date '+%F %T') start $node" >>"$lf"
  local faults=
  if [[ $DELAY_MODE == repld && $key == *netns* ]]; then
    faults="recv-delay-us=$(delay_us "$NETEM_DELAY")"   # both nodes: one delay per direction
  fi
  if ((inns)); then
    REPLSTOR_FAULTS=$faults ip netns exec "$NETNS" "$REPLD" --config "${K_CONF[$key]}" --node "$node" >>"$lf" 2>&1 </dev/null &
  else
    REPLSTOR_FAULTS=$faults "$REPLD" --config "${K_CONF[$key]}" --node "$node" >>"$lf" 2>&1 </dev/null &
  fi
  pid=$!
  register_pid "$pid" "$key $node"
  if [[ $node == alpha ]]; then K_APID[$key]=$pid; else K_BPID[$key]=$pid; fi
  t=$(ADMIN wait "$sock" up 60 "$pid" 2>"$TOOLS/err") ||
    fail_node "$lf" "$key: repld $node (pid $pid) did not bring $RES up: $(cat "$TOOLS/err")"
  log "$key: $node up (pid $pid, ${t}s after start)"
}

wait_state() {  # wait_state KEY NODE SPEC TIMEOUT WHAT: wait or fail loudly with both logs
  local key=$1 node=$2 spec=$3 to=$4 what=$5 sock pids=() rc=0
  if [[ $node == alpha ]]; then sock=${K_ASOCK[$key]}; else sock=${K_BSOCK[$key]}; fi
  [[ -n ${K_APID[$key]:-} ]] && pids+=("${K_APID[$key]}")
  [[ -n ${K_BPID[$key]:-} ]] && pids+=("${K_BPID[$key]}")
  WAITED=$(ADMIN wait "$sock" "$spec" "$to" "${pids[@]}" 2>"$TOOLS/err") || rc=$?
  if ((rc != 0)); then
    echo "repl-compare: error: $key: $what: $(cat "$TOOLS/err")" >&2
    [[ -n ${K_BLOG[$key]:-} && -s ${K_BLOG[$key]} ]] && log_tail "${K_BLOG[$key]}" 30
    fail_node "${K_ALOG[$key]}" "$key: $what failed (logs above/below; status alpha: $(ADMIN summary "${K_ASOCK[$key]}"))"
  fi
}

start_events() {  # start_events KEY: record alpha's event stream (connection drops, resync timing)
  local key=$1 f="$DIR/logs/${1//\//-}-alpha-events.jsonl"
  K_EVFILE[$key]=$f
  # started directly (not through the ADMIN function) so that $! is the python process itself
  RES=$RES "$PY" "$TOOLS/admin.py" events "${K_ASOCK[$key]}" "$f" 2>>"$DIR/logs/events-errors.log" &
  register_pid "$!" "$key events"
  K_EVPID[$key]=$!
  local i
  for ((i = 0; i < 50; i++)); do grep -q '"object": *"-"' "$f" 2>/dev/null && break; sleep 0.1; done
  K_EVMARK[$key]=$(wc -l <"$f")
}
stop_events() { [[ -n ${K_EVPID[$1]:-} ]] && stop_pid "${K_EVPID[$1]}"; unset "K_EVPID[$1]"; }

# start_config MEDIUM CONFIG WORKDIR SEED: a ready configuration: plain server, or cluster with alpha Primary
start_config() {
  local medium=$1 cfg=$2 wd=$3 seed=$4 key="$1/$2"
  local d="$wd/$cfg"; mkdir -p "$d"
  K_WD[$key]=$d
  K_ALOG[$key]="$DIR/logs/$medium-$cfg-alpha.log"; K_BLOG[$key]="$DIR/logs/$medium-$cfg-beta.log"
  : >"${K_ALOG[$key]}"
  if [[ $cfg == plain ]]; then
    make_image "$seed" "$d/plain.img" "$medium"
    alloc_port; K_NBD[$key]=$PORT
    "$REPLD" serve --listen "127.0.0.1:$PORT" --export "$PLAIN_EXPORT=$d/plain.img,size=$SIZE_BYTES" \
      --admin "$d/plain.sock" >>"${K_ALOG[$key]}" 2>&1 </dev/null &
    local pid=$!
    register_pid "$pid" "$key repld serve"; K_APID[$key]=$pid
    local i
    for ((i = 0; i < 300; i++)); do
      same_proc "$pid" || fail_node "${K_ALOG[$key]}" "$key: repld serve (pid $pid) exited during start"
      [[ -n $(ss -Htln "sport = :$PORT" 2>/dev/null) ]] && break
      sleep 0.2
    done
    ((i < 300)) || fail_node "${K_ALOG[$key]}" "$key: repld serve not listening on 127.0.0.1:$PORT after 60 s"
    log "$key: plain export nbd://127.0.0.1:$PORT/$PLAIN_EXPORT (pid $pid)"
    return
  fi
  local proto=${cfg%%-*} a_addr b_addr b_nbd inns=0
  [[ $cfg == disconnected ]] && proto=C
  alloc_port; a_addr="127.0.0.1:$PORT"
  alloc_port; K_NBD[$key]=$PORT
  if [[ $cfg == C-netns ]]; then
    inns=1; a_addr="$HOST_IP:${a_addr##*:}"
    alloc_port; b_addr="$NS_IP:$PORT"; alloc_port; b_nbd="$NS_IP:$PORT"
  else
    alloc_port; b_addr="127.0.0.1:$PORT"; alloc_port; b_nbd="127.0.0.1:$PORT"
  fi
  local host_ip=127.0.0.1
  [[ $cfg == C-netns ]] && host_ip=$HOST_IP
  alloc_port; RAFT_A="$host_ip:$PORT"; alloc_port; RAFT_W="$host_ip:$PORT"
  alloc_port; if ((inns)); then RAFT_B="$NS_IP:$PORT"; else RAFT_B="127.0.0.1:$PORT"; fi
  K_ASOCK[$key]="$d/alpha.sock"; K_BSOCK[$key]="$d/beta.sock"; K_CONF[$key]="$d/cluster.toml"
  write_config "${K_CONF[$key]}" "rbench-$cfg" "$proto" "$a_addr" "127.0.0.1:${K_NBD[$key]}" "$d/alpha.sock" \
    "$d/alpha.img" "$b_addr" "$b_nbd" "$d/beta.sock" "$d/beta.img"
  cp "${K_CONF[$key]}" "$DIR/logs/$medium-$cfg.toml"
  make_image "$seed" "$d/alpha.img" "$medium"
  create_md "$key" alpha
  [[ $QUORUM == witness ]] && start_witness "$key" "$d"
  if [[ $cfg == disconnected ]]; then
    # beta is configured but never started: alpha dials it every connect-int and keeps a bitmap for it
    start_node "$key" alpha 0
    replctl_verb "$key" "${K_ASOCK[$key]}" primary --force ||
      fail_node "${K_ALOG[$key]}" "$key: replctl primary $RES --force on alpha failed: $REPLCTL_OUT"
    wait_state "$key" alpha role=Primary,disk=UpToDate 30 "alpha Primary/UpToDate"
    start_events "$key"
    log "$key: alpha Primary, beta not running; nbd://127.0.0.1:${K_NBD[$key]}/$RES"
    return
  fi
  : >"${K_BLOG[$key]}"
  make_image "$seed" "$d/beta.img" "$medium"
  create_md "$key" beta
  start_node "$key" alpha 0
  start_node "$key" beta "$inns"
  wait_state "$key" alpha conn=Connected,repl=Established 60 "alpha and beta Connected"
  # skip the initial sync (both volumes start from the same seed anyway), then promote alpha
  replctl_verb "$key" "${K_ASOCK[$key]}" new-current-uuid --clear-bitmap ||
    fail_node "${K_ALOG[$key]}" "$key: replctl new-current-uuid --clear-bitmap failed: $REPLCTL_OUT"
  wait_state "$key" alpha disk=UpToDate,conn=Connected,repl=Established,pdisk=UpToDate 30 "both UpToDate after --clear-bitmap"
  replctl_verb "$key" "${K_ASOCK[$key]}" primary ||
    fail_node "${K_ALOG[$key]}" "$key: replctl primary $RES on alpha failed: $REPLCTL_OUT"
  wait_state "$key" alpha role=Primary,disk=UpToDate,conn=Connected,repl=Established,pdisk=UpToDate 30 "alpha Primary"
  start_events "$key"
  log "$key: alpha Primary, beta Secondary/UpToDate (protocol $proto); nbd://127.0.0.1:${K_NBD[$key]}/$RES"
}

stop_config() {  # beta first, then alpha, then the witness, by PID (SIGTERM)
  local key=$1
  stop_events "$key"
  [[ -n ${K_BPID[$key]:-} ]] && stop_pid "${K_BPID[$key]}"
  [[ -n ${K_APID[$key]:-} ]] && stop_pid "${K_APID[$key]}"
  [[ -n ${K_WPID[$key]:-} ]] && stop_pid "${K_WPID[$key]}"
  unset "K_BPID[$key]" "K_APID[$key]" "K_WPID[$key]"
}

start_witness() {  # start_witness KEY DIR: the cluster store's third voter (no disk), on the host side
  local key=$1 d=$2 lf="$DIR/logs/${1//\//-}-witness.log" pid i
  K_WSOCK[$key]="$d/witness.sock"
  "$REPLD" --config "${K_CONF[$key]}" --node witness >>"$lf" 2>&1 </dev/null &
  pid=$!
  register_pid "$pid" "$key witness"
  K_WPID[$key]=$pid
  for ((i = 0; i < 300; i++)); do
    same_proc "$pid" || fail_node "$lf" "$key: the witness (pid $pid) exited during start"
    [[ -S ${K_WSOCK[$key]} ]] && break
    sleep 0.2
  done
  ((i < 300)) || fail_node "$lf" "$key: the witness did not open its admin socket in 60 s"
  log "$key: witness up (pid $pid)"
}

expected_spec() {  # the state alpha must be in between and after runs
  if [[ ${1#*/} == disconnected ]]; then echo role=Primary,disk=UpToDate
  else echo role=Primary,disk=UpToDate,conn=Connected,repl=Established,pdisk=UpToDate; fi
}
# health_check KEY: HC_NOTE = empty, or what went wrong since the previous check; HC_BADSTATE = 1 when alpha is
# not in the expected state now. Not for a subshell: it advances the event-stream mark.
health_check() {
  local key=$1 cfg=${1#*/} d
  HC_NOTE=; HC_BADSTATE=0
  same_proc "${K_APID[$key]}" || HC_NOTE="alpha (pid ${K_APID[$key]}) exited"
  if [[ -n ${K_BPID[$key]:-} ]] && ! same_proc "${K_BPID[$key]}"; then
    HC_NOTE="${HC_NOTE:+$HC_NOTE; }beta (pid ${K_BPID[$key]}) exited"
  fi
  if [[ -n $HC_NOTE || $cfg == plain ]]; then return 0; fi
  if [[ $cfg != disconnected && -n ${K_EVFILE[$key]:-} ]]; then
    d=$(ADMIN drops "${K_EVFILE[$key]}" "${K_EVMARK[$key]}")
    K_EVMARK[$key]=$(wc -l <"${K_EVFILE[$key]}")
    if [[ ${d%% *} != 0 ]]; then
      HC_NOTE="connection to beta lost ${d%% *} time(s) (first: ${d#* })"
    fi
  fi
  if ! ADMIN wait "${K_ASOCK[$key]}" "$(expected_spec "$key")" 0 >/dev/null 2>&1; then
    HC_BADSTATE=1
    HC_NOTE="${HC_NOTE:+$HC_NOTE; }alpha now: $(ADMIN summary "${K_ASOCK[$key]}")"
  fi
  return 0
}

incident() {  # incident KEY TEXT: misbehaviour outside a measured run (listed under Notes)
  printf '%s\t%s\t%s\n' "${1%%/*}" "${1#*/}" "$2" >>"$INCIDENTS"
  log "$1: $2"
}

# before_run KEY WHAT: report what happened since the last check; if alpha is not back in the expected state
# (e.g. a resync after a lost connection still runs), wait for it. Returns 1 if the configuration is out.
before_run() {
  local key=$1 what=$2 to=$((120 + SIZE_BYTES / (5 << 20))) t
  health_check "$key"
  [[ -n $HC_NOTE ]] || return 0
  if [[ $HC_NOTE == *exited* ]]; then mark_failed "$key" "$HC_NOTE (before $what)"; return 1; fi
  incident "$key" "between runs, before $what: $HC_NOTE"
  ((HC_BADSTATE)) || return 0
  if t=$(ADMIN wait "${K_ASOCK[$key]}" "$(expected_spec "$key")" "$to" "${K_APID[$key]}" ${K_BPID[$key]:-} 2>"$TOOLS/err"); then
    incident "$key" "back to $(expected_spec "$key") after ${t}s of waiting; $what runs now"
    K_EVMARK[$key]=$(wc -l <"${K_EVFILE[$key]}")
    return 0
  fi
  mark_failed "$key" "not back to $(expected_spec "$key") before $what: $(cat "$TOOLS/err")"
  return 1
}

# run_fio OUTFILE PORT EXPORT NAME RW BS QD RUNTIME [extra fio args...]
run_fio() {
  local out=$1 port=$2 exp=$3 name=$4 rw=$5 bs=$6 qd=$7 rt=$8 rc=0; shift 8
  local tb=(--time_based --runtime="$rt")
  ((rt > 0)) || tb=()
  {
    echo "=== $(date +%T) $name port=$port rw=$rw bs=$bs qd=$qd runtime=$rt $* -> $out"
    timeout -k 10 $((rt + 120)) fio --name="$name" --ioengine=nbd --uri="nbd://127.0.0.1:$port/$exp" \
      --rw="$rw" --bs="$bs" --iodepth="$qd" --numjobs=1 "${tb[@]}" "$@" \
      --lat_percentiles=1 --output-format=json --output="$out" || rc=$?
    echo "=== rc=$rc"
  } >>"$DIR/logs/fio.log" 2>&1
  return "$rc"
}

one_line() {  # one_line JSON -> "IOPS MB/s p50 p99" (write side, total latency)
  "$PY" - "$1" <<'EOF' 2>/dev/null || echo "(unparseable fio output)"
import json, sys
t = open(sys.argv[1]).read(); j = json.loads(t[t.index('{'):])['jobs'][0]
d = j['write']; pc = d['lat_ns'].get('percentile') or d['clat_ns'].get('percentile') or {}
print(f"{d['iops']:>9,.0f} IOPS {d['bw_bytes']/1e6:>8,.1f} MB/s  p50 {pc.get('50.000000',0)/1e3:>7,.0f} us  p99 {pc.get('99.000000',0)/1e3:>8,.0f} us"
      + (f"  fio error={j['error']}" if j.get('error') else ''))
EOF
}
export_of() { if [[ ${1#*/} == plain ]]; then echo "$PLAIN_EXPORT"; else echo "$RES"; fi; }

mark_failed() {  # mark_failed KEY REASON: no more runs for this configuration in this medium
  K_FAILED[$1]=1
  printf '%s\t%s\t%s\n' "${1%%/*}" "${1#*/}" "$2" >>"$FAILS"
  log "$1: FAILED: $2"
  [[ -n ${K_BLOG[$1]:-} && -s ${K_BLOG[$1]} ]] && log_tail "${K_BLOG[$1]}" 15
  log_tail "${K_ALOG[$1]}" 15
  stop_config "$1"
}

# ---------------------------------------------------------------- resync
# resync_round MEDIUM PATH ROUND WORKDIR SEED: a fresh cluster; full sync to a fresh beta, then a bitmap resync
resync_round() {
  local medium=$1 path=$2 r=$3 wd=$4 seed=$5 key="$1/resync-$2" inns=0 a_addr b_addr b_nbd
  local d="$wd/resync-$path"; mkdir -p "$d"
  K_WD[$key]=$d
  K_ALOG[$key]="$DIR/logs/$medium-resync-$path-alpha.log"; K_BLOG[$key]="$DIR/logs/$medium-resync-$path-beta.log"
  alloc_port; a_addr="127.0.0.1:$PORT"; alloc_port; K_NBD[$key]=$PORT
  if [[ $path == netns ]]; then
    inns=1; a_addr="$HOST_IP:${a_addr##*:}"
    alloc_port; b_addr="$NS_IP:$PORT"; alloc_port; b_nbd="$NS_IP:$PORT"
  else
    alloc_port; b_addr="127.0.0.1:$PORT"; alloc_port; b_nbd="127.0.0.1:$PORT"
  fi
  K_ASOCK[$key]="$d/alpha.sock"; K_BSOCK[$key]="$d/beta.sock"; K_CONF[$key]="$d/cluster.toml"
  write_config "${K_CONF[$key]}" "rbench-resync-$path" C "$a_addr" "127.0.0.1:${K_NBD[$key]}" "$d/alpha.sock" \
    "$d/alpha.img" "$b_addr" "$b_nbd" "$d/beta.sock" "$d/beta.img"
  ((r > 1)) || cp "${K_CONF[$key]}" "$DIR/logs/$medium-resync-$path.toml"
  # alpha: the seed's data; beta: a sparse file (fresh metadata on both)
  [[ -f $d/alpha.img ]] || make_image "$seed" "$d/alpha.img" "$medium"
  rm -f "$d/beta.img"; truncate -s "$SIZE_BYTES" "$d/beta.img"
  create_md "$key" alpha
  create_md "$key" beta

  # (a) full sync: both nodes up and Connected (both Inconsistent: nothing to sync), then alpha is forced
  # Primary, which makes the connected fresh peer full-resync from it
  start_node "$key" alpha 0
  start_node "$key" beta "$inns"
  wait_state "$key" alpha conn=Connected,repl=Established 60 "alpha and beta Connected"
  start_events "$key"
  local mark=${K_EVMARK[$key]} t0 t1 wall st note= rs0 rs1 oos
  local to=$((120 + SIZE_BYTES / (5 << 20)))
  t0=$(date +%s.%N)
  replctl_verb "$key" "${K_ASOCK[$key]}" primary --force ||
    fail_node "${K_ALOG[$key]}" "$key: replctl primary $RES --force on alpha failed: $REPLCTL_OUT"
  wait_state "$key" alpha sync-started 30 "full sync to beta starting after primary --force"
  wait_state "$key" alpha role=Primary,disk=UpToDate,conn=Connected,repl=Established,pdisk=UpToDate "$to" "full sync to beta"
  wait_state "$key" beta disk=UpToDate 10 "beta UpToDate after the full sync"
  t1=$(date +%s.%N); wall=$("$PY" -c "print(f'{$t1 - $t0:.3f}')")
  st=$(ADMIN synctime "${K_EVFILE[$key]}" "$mark")
  rs1=$(ADMIN status "${K_ASOCK[$key]}" resync_sent_bytes)
  ((${st##* } <= 1)) || note="$((${st##* } - 1)) failed handshake(s) before the full sync ran (see logs/$medium-resync-$path-*.log)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$medium" "$path" "$r" full "$SIZE_BYTES" "${st%% *}" "$wall" \
    "${st##* }" "$note" >>"$RESYNCS"
  log "[$medium r$r/$ROUNDS] resync $(printf '%-22s' "$(label_of "$path")") full sync: $SIZE_BYTES bytes in ${st%% *} s" \
    "(events; ${wall}s from primary --force; resync_sent_bytes $rs1)${note:+ — $note}"

  # (b) bitmap resync: beta disconnects, alpha writes RESYNC_BYTES of random 4k blocks, beta reconnects
  replctl_verb "$key" "${K_BSOCK[$key]}" disconnect ||
    fail_node "${K_BLOG[$key]}" "$key: replctl disconnect on beta failed: $REPLCTL_OUT"
  wait_state "$key" alpha role=Primary,repl=Off 30 "alpha sees beta disconnected"
  local json="$DIR/raw/$medium/resync-$path-dirty-r$r.json"
  run_fio "$json" "${K_NBD[$key]}" "$RES" dirty randwrite 4k 32 0 --size="$RESYNC_BYTES" ||
    fail_node "${K_ALOG[$key]}" "$key: fio (writing $RESYNC_BYTES bytes while beta is disconnected) failed, see $DIR/logs/fio.log"
  read -r oos rs0 < <(ADMIN status "${K_ASOCK[$key]}" out_of_sync_bytes resync_sent_bytes)
  mark=$(wc -l <"${K_EVFILE[$key]}")
  t0=$(date +%s.%N)
  replctl_verb "$key" "${K_BSOCK[$key]}" connect ||
    fail_node "${K_BLOG[$key]}" "$key: replctl connect on beta failed: $REPLCTL_OUT"
  wait_state "$key" alpha sync-started 30 "bitmap resync to beta starting after connect"
  wait_state "$key" alpha conn=Connected,repl=Established,pdisk=UpToDate "$to" "bitmap resync to beta"
  wait_state "$key" beta disk=UpToDate 10 "beta UpToDate after the bitmap resync"
  t1=$(date +%s.%N); wall=$("$PY" -c "print(f'{$t1 - $t0:.3f}')")
  st=$(ADMIN synctime "${K_EVFILE[$key]}" "$mark")
  rs1=$(ADMIN status "${K_ASOCK[$key]}" resync_sent_bytes)
  note=
  ((${st##* } <= 1)) || note="$((${st##* } - 1)) failed handshake(s) before the resync ran (see logs/$medium-resync-$path-*.log)"
  ((oos == RESYNC_BYTES)) || note="${note:+$note; }out_of_sync_bytes before connect was $oos, expected $RESYNC_BYTES"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$medium" "$path" "$r" bitmap "$((rs1 - rs0))" "${st%% *}" "$wall" \
    "${st##* }" "$note" >>"$RESYNCS"
  log "[$medium r$r/$ROUNDS] resync $(printf '%-22s' "$(label_of "$path")") bitmap resync: $((rs1 - rs0)) bytes in" \
    "${st%% *} s (events; ${wall}s from connect; out-of-sync before: $oos)${note:+ — $note}"
  stop_config "$key"
}

# ---------------------------------------------------------------- metadata
ver() { "$@" 2>&1 | head -n1 | tr -d '\r' || true; }
CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
JAR="$REPO_DIR/cluster/target/cluster.jar"
{
  printf 'date\t%s\n' "$(date '+%Y-%m-%d %H:%M:%S %Z')"
  printf 'command\t%s\n' "$CMDLINE"
  printf 'kernel\t%s\n' "$(uname -r)"
  printf 'nproc\t%s\n' "$(nproc)"
  printf 'cpu\t%s\n' "${CPU:-unknown}"
  printf 'mem\t%s\n' "$(awk '/^MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  printf 'loadavg_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'ver_fio\t%s\n' "$(ver fio --version)"
  printf 'ver_replstor\t%s\n' "replstor $(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo 'no-git-rev')$(
    [[ -f $JAR ]] && date -r "$JAR" '+ (cluster.jar built %Y-%m-%d %H:%M)')"
  printf 'ver_java\t%s\n' "$(java -version 2>&1 | head -n1 | sed 's/"//g' || echo unknown)"
  printf 'rounds\t%s\nruntime\t%s\nsize\t%s\nsize_bytes\t%s\nwarmup\t%s\n' "$ROUNDS" "$RUNTIME" "$SIZE" "$SIZE_BYTES" "$WARMUP"
  printf 'resync_bytes\t%s\nnetem_delay\t%s\n' "$RESYNC_BYTES" "$NETEM_DELAY"
  printf 'media\t%s\nconfigs\t%s\nresync\t%s\ndir\t%s\n' "${MEDIA_LIST[*]}" "${CFG_LIST[*]}" "${RESYNC_LIST[*]}" "$DIR"
  for c in "${CFG_LIST[@]}" "${RESYNC_LIST[@]}"; do printf 'label_%s\t%s\n' "$c" "$(label_of "$c")"; done
} >"$META"

# ---------------------------------------------------------------- main
log "output: $DIR"
log "configs: ${CFG_LIST[*]}; resync: ${RESYNC_LIST[*]:-none}; media: ${MEDIA_LIST[*]}; rounds=$ROUNDS runtime=${RUNTIME}s size=$SIZE warmup=${WARMUP}s"
if ((NEED_NETNS)); then
  setup_netns
  # the labels again, now that the way the delay is made is known (later lines win)
  for c in "${CFG_LIST[@]}" "${RESYNC_LIST[@]}"; do printf 'label_%s\t%s\n' "$c" "$(label_of "$c")"; done >>"$META"
  printf 'netns\t%s, veth %s (host) <-> %s (namespace), qdiscs: %s; ping: %s\n' "$NETNS" "$HOST_IP" "$NS_IP" \
    "$QDISC_LINE" "$RTT_LINE" >>"$META"
fi

NCFG=${#CFG_LIST[@]}
for medium in "${MEDIA_LIST[@]}"; do
  if [[ $medium == tmpfs ]]; then
    [[ -d /dev/shm ]] || die "/dev/shm does not exist"
    wd=$(mktemp -d /dev/shm/repl-compare.XXXXXX)
  else
    wd=$(mktemp -d "$DIR/images-disk.XXXXXX")
    [[ $(df --output=fstype "$wd" | tail -n1) != tmpfs ]] || log "warning: --dir is on tmpfs, the 'disk' medium is not a disk"
  fi
  TMP_DIRS+=("$wd")
  nimg=1   # the seed
  for c in "${CFG_LIST[@]}"; do case $c in plain|disconnected) nimg=$((nimg + 1)) ;; *) nimg=$((nimg + 2)) ;; esac; done
  ((nimg >= 1 + 2 * ${#RESYNC_LIST[@]})) || nimg=$((1 + 2 * ${#RESYNC_LIST[@]}))
  need_b=$((nimg * (SIZE_BYTES + (1 << 20)) + (64 << 20)))
  (($(free_bytes "$wd") >= need_b)) || die "$medium: need $((need_b >> 20)) MiB free in $wd (--size $SIZE x $nimg images)"
  mkdir -p "$DIR/raw/$medium"

  log "== medium $medium: $wd; seed image of $SIZE from /dev/urandom"
  seed="$wd/seed.img"
  head -c "$SIZE_BYTES" /dev/urandom >"$seed"
  for cfg in "${CFG_LIST[@]}"; do start_config "$medium" "$cfg" "$wd" "$seed"; done

  if ((WARMUP > 0)); then
    for cfg in "${CFG_LIST[@]}"; do
      key="$medium/$cfg"
      log "$key: warm-up ${WARMUP}s (4k randwrite QD32, not recorded)"
      if ! run_fio "$DIR/logs/warmup-$medium-$cfg.json" "${K_NBD[$key]}" "$(export_of "$key")" warmup randwrite 4k 32 "$WARMUP"; then
        mark_failed "$key" "warm-up fio run failed (see logs/fio.log)"
        continue
      fi
      health_check "$key"
      if [[ $HC_NOTE == *exited* ]]; then mark_failed "$key" "during the warm-up: $HC_NOTE"
      elif [[ -n $HC_NOTE ]]; then incident "$key" "during the warm-up: $HC_NOTE"; fi
    done
  fi

  for ((r = 1; r <= ROUNDS; r++)); do
    order=()   # rotate the order each round so no configuration always runs first or last
    for ((i = 0; i < NCFG; i++)); do order+=("${CFG_LIST[$(((i + r - 1) % NCFG))]}"); done
    for wl in "${WORKLOADS[@]}"; do
      IFS='|' read -r wname rw bs qd label <<<"$wl"
      mkdir -p "$DIR/raw/$medium/$wname"
      for cfg in "${order[@]}"; do
        key="$medium/$cfg"; [[ -z ${K_FAILED[$key]:-} ]] || continue
        before_run "$key" "$wname round $r" || continue
        json="$DIR/raw/$medium/$wname/$cfg-r$r.json"
        rc=0; run_fio "$json" "${K_NBD[$key]}" "$(export_of "$key")" "$wname" "$rw" "$bs" "$qd" "$RUNTIME" || rc=$?
        health_check "$key"; note=$HC_NOTE
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$medium" "$cfg" "$wname" "$r" "${json#"$DIR"/}" "$rc" "$note" >>"$RUNS"
        if ((rc == 0)); then
          log "[$medium r$r/$ROUNDS] $(printf '%-18s %-34s' "$label" "$(label_of "$cfg")") $(one_line "$json")"
        else
          log "[$medium r$r/$ROUNDS] $(printf '%-18s %-34s' "$label" "$(label_of "$cfg")") fio FAILED rc=$rc (logs/fio.log)"
        fi
        if [[ -n $note ]]; then
          log "$key: $note"
          if [[ $note == *exited* ]]; then mark_failed "$key" "$note (during $wname round $r)"; fi
        fi
      done
    done
  done
  for cfg in "${CFG_LIST[@]}"; do stop_config "$medium/$cfg"; rm -rf -- "${wd:?}/$cfg"; done

  for path in "${RESYNC_LIST[@]}"; do
    for ((r = 1; r <= ROUNDS; r++)); do resync_round "$medium" "$path" "$r" "$wd" "$seed"; done
  done
  rm -rf -- "$wd"
  log "== medium $medium done"
done
printf 'loadavg_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$META"

# ---------------------------------------------------------------- summary: results.json + table.md
"$PY" - "$DIR" <<'EOF'
import json, os, statistics, sys

d = sys.argv[1]
meta = dict(l.rstrip('\n').split('\t', 1) for l in open(os.path.join(d, 'meta.tsv')) if '\t' in l)
configs = meta['configs'].split()
media = meta['media'].split()
paths = meta['resync'].split()
label = lambda c: meta.get('label_' + c, c)
WL = [  # name, key metric, label
    ('randwrite-4k-qd32', 'iops', '4k randwrite QD32'),
    ('seqwrite-1m-qd8', 'mb_s', '1M seq write QD8'),
    ('randwrite-4k-qd1', 'p50_us', '4k randwrite QD1'),
]

runs = []
for l in open(os.path.join(d, 'runs.tsv')):
    medium, cfg, wname, rnd, rel, rc, note = l.rstrip('\n').split('\t')
    rec = {'medium': medium, 'config': cfg, 'workload': wname, 'round': int(rnd), 'fio_json': rel,
           'fio_rc': int(rc), 'note': note, 'ok': False}
    try:
        t = open(os.path.join(d, rel)).read()
        job = json.loads(t[t.index('{'):])['jobs'][0]
        w = job['write']
        pc = w['lat_ns'].get('percentile') or w['clat_ns'].get('percentile') or {}
        cpc = w['clat_ns'].get('percentile') or {}
        rec.update(iops=w['iops'], mb_s=w['bw_bytes'] / 1e6,
                   p50_us=pc.get('50.000000', 0) / 1e3, p99_us=pc.get('99.000000', 0) / 1e3,
                   clat_p50_us=cpc.get('50.000000', 0) / 1e3, clat_p99_us=cpc.get('99.000000', 0) / 1e3,
                   slat_mean_us=w['slat_ns']['mean'] / 1e3, lat_mean_us=w['lat_ns']['mean'] / 1e3,
                   fio_error=job.get('error', 0), total_ios=w.get('total_ios'))
        rec['ok'] = int(rc) == 0 and not job.get('error') and w.get('total_ios', 0) > 0 and not note
    except Exception as e:  # missing / truncated JSON
        rec['parse_error'] = repr(e)
    runs.append(rec)

summary = {}
for medium in media:
    for wname, key, _ in WL:
        for cfg in configs:
            ok = [r for r in runs if r['ok'] and (r['medium'], r['workload'], r['config']) == (medium, wname, cfg)]
            if not ok:
                continue
            s = {'medium': medium, 'workload': wname, 'config': cfg, 'rounds_ok': len(ok), 'key_metric': key}
            for m in ('iops', 'mb_s', 'p50_us', 'p99_us'):
                s[m + '_median'] = statistics.median(r[m] for r in ok)
                s[m + '_all'] = [round(r[m], 3) for r in sorted(ok, key=lambda r: r['round'])]
            vals = s[key + '_all']; med = s[key + '_median']
            s['key_spread'] = (max(vals) - min(vals)) / med if len(vals) > 1 and med else None
            summary[(medium, wname, cfg)] = s

def fmt(v, dec=1):
    if v is None:
        return 'n/a'
    return f'{v:,.0f}' if abs(v) >= 100 else f'{v:,.{dec}f}'

def ratio(v, ref):
    return v / ref if v is not None and ref else None

def fr(x):
    return 'n/a' if x is None else f'{x:.2f}×'

ratios = []
lines = []
lines.append(f"Replication overhead — {meta['date']} · kernel {meta['kernel']} · nproc {meta['nproc']} · "
             f"CPU {meta['cpu']} · {meta.get('mem', '')} RAM · {meta.get('ver_fio', '')} · {meta.get('ver_replstor', '')} · "
             f"{meta.get('ver_java', '')}")
lines.append('')
lines.append(f"Command: `{meta['command']}`")
lines.append('')
net = f" Namespace link: {meta['netns']}." if meta.get('netns') else ''
lines.append(f"Settings: {meta['rounds']} round(s) × {meta['runtime']} s per run, {meta['size']} volume per configuration "
             f"(pre-filled from /dev/urandom), warm-up {meta['warmup']} s, fio nbd engine (libnbd), 1 connection, "
             f"numjobs=1, client on loopback to alpha; replicated configs: 2 nodes, c-max-rate/resync-rate 4G, "
             f"connect-int/ping-int 1 s, timeout 0.9 s, ping-timeout 1 s.{net} Values are medians over rounds; MB/s = 1e6 B/s; "
             f"latency = fio total latency (lat: submission + completion). Load average start {meta['loadavg_start']}, "
             f"end {meta.get('loadavg_end', '?')}.")
lines.append('')
hdr = ['medium', 'workload', 'configuration', 'IOPS', 'MB/s', 'throughput ÷ plain', 'p50 µs', 'p50 ÷ plain',
       'p99 µs', 'p99 ÷ plain', 'spread']
lines.append('| ' + ' | '.join(hdr) + ' |')
lines.append('|' + '|'.join(['---'] * 3 + ['---:'] * (len(hdr) - 3)) + '|')
for medium in media:
    for wname, key, wlabel in WL:
        ref = summary.get((medium, wname, 'plain'))
        for cfg in configs:
            s = summary.get((medium, wname, cfg))
            row = [medium, wlabel, label(cfg)]
            if s:
                thr = ratio(s['iops_median'], ref and ref['iops_median'])
                r50 = ratio(s['p50_us_median'], ref and ref['p50_us_median'])
                r99 = ratio(s['p99_us_median'], ref and ref['p99_us_median'])
                spread = '–' if s['key_spread'] is None else f"{s['key_spread'] * 100:.0f}%"
                if cfg == 'plain':
                    row += [fmt(s['iops_median'], 0), fmt(s['mb_s_median']), '1.00×', fmt(s['p50_us_median']),
                            '1.00×', fmt(s['p99_us_median']), '1.00×', spread]
                else:
                    row += [fmt(s['iops_median'], 0), fmt(s['mb_s_median']), f'**{fr(thr)}**' if key != 'p50_us' else fr(thr),
                            fmt(s['p50_us_median']), f'**{fr(r50)}**' if key == 'p50_us' else fr(r50),
                            fmt(s['p99_us_median']), fr(r99), spread]
                    ratios.append({'medium': medium, 'workload': wname, 'config': cfg, 'throughput_ratio': thr,
                                   'p50_ratio': r50, 'p99_ratio': r99})
            else:
                row += ['n/a'] * 8
            lines.append('| ' + ' | '.join(row) + ' |')
lines.append('')
lines.append('throughput ÷ plain: IOPS (and MB/s) of the configuration ÷ the plain export\'s; < 1 is the replication '
             'cost. p50/p99 ÷ plain: latency ÷ the plain export\'s; > 1 is the replication cost. Bold: the key metric. '
             'spread = (max − min) / median of the key metric over rounds (IOPS for 4k QD32, MB/s for 1M, p50 for QD1).')

# resync
rs = []
for l in open(os.path.join(d, 'resync.tsv')):
    medium, path, rnd, kind, nbytes, sync_s, wall_s, attempts, note = l.rstrip('\n').split('\t')
    rec = {'medium': medium, 'path': path, 'round': int(rnd), 'kind': kind, 'bytes': int(nbytes),
           'sync_s': None if sync_s == 'none' else float(sync_s), 'wall_s': float(wall_s),
           'handshakes': int(attempts), 'note': note}
    rec['mb_s'] = rec['bytes'] / rec['sync_s'] / 1e6 if rec['sync_s'] else None
    rs.append(rec)
rsum = []
if paths:
    lines.append('')
    lines.append('| medium | resync | path | MB/s | bytes | sync s | start → UpToDate s | spread |')
    lines.append('|---|---|---|---:|---:|---:|---:|---:|')
    for medium in media:
        for kind, klabel in (('full', 'full sync (fresh peer)'), ('bitmap', 'bitmap resync after disconnect')):
            for path in paths:
                ok = [r for r in rs if (r['medium'], r['kind'], r['path']) == (medium, kind, path) and r['mb_s']]
                if not ok:
                    lines.append(f'| {medium} | {klabel} | {label(path)} | n/a | | | | |')
                    continue
                mbs = [r['mb_s'] for r in ok]
                med = statistics.median(mbs)
                s = {'medium': medium, 'kind': kind, 'path': path, 'mb_s_median': med,
                     'bytes_median': statistics.median(r['bytes'] for r in ok),
                     'sync_s_median': statistics.median(r['sync_s'] for r in ok),
                     'wall_s_median': statistics.median(r['wall_s'] for r in ok),
                     'mb_s_all': [round(x, 1) for x in mbs],
                     'spread': (max(mbs) - min(mbs)) / med if len(mbs) > 1 and med else None}
                rsum.append(s)
                spread = '–' if s['spread'] is None else f"{s['spread'] * 100:.0f}%"
                lines.append(f"| {medium} | {klabel} | {label(path)} | **{fmt(med)}** | "
                             f"{s['bytes_median'] / 1048576:,.0f} MiB | {s['sync_s_median']:.2f} | "
                             f"{s['wall_s_median']:.2f} | {spread} |")
    lines.append('')
    lines.append(f"Full sync: a fresh cluster, both nodes Connected with fresh metadata (alpha's file holds the data), then "
                 f"`replctl primary r0 --force` on alpha; MB/s = volume "
                 f"size ÷ sync time. Bitmap resync: beta disconnects, fio writes {int(meta['resync_bytes']) / 1048576:,.0f} MiB "
                 f"of random 4k blocks (each once) to alpha, beta reconnects; MB/s = resync_sent_bytes delta ÷ sync time. "
                 f"sync s: from the handshake's sync start (WFBitMapS) to peer UpToDate, from alpha's event timestamps. "
                 f"start → UpToDate: wall time from `replctl primary --force` (full) or `replctl connect` (bitmap) until "
                 f"status shows UpToDate (polled every 0.2 s); it includes replctl's JVM start, the reconnect and "
                 f"(bitmap) the connect-int retry.")

notes = []
for l in open(os.path.join(d, 'failures.tsv')):
    medium, cfg, reason = l.rstrip('\n').split('\t', 2)
    notes.append(f'- {medium}/{label(cfg)}: stopped being measured — {reason}')
for l in open(os.path.join(d, 'incidents.tsv')):
    medium, cfg, text = l.rstrip('\n').split('\t', 2)
    notes.append(f'- {medium}/{label(cfg)}: {text}')
for r in runs:
    if not r['ok']:
        why = r['note'] or (f"fio rc={r['fio_rc']}" + (f", {r['parse_error']}" if r.get('parse_error') else ''))
        notes.append(f"- {r['medium']}/{label(r['config'])} {r['workload']} round {r['round']}: not counted — {why}")
for r in rs:
    if r['note'] or not r['mb_s']:
        notes.append(f"- resync {r['medium']}/{label(r['path'])} {r['kind']} round {r['round']}: "
                     f"{r['note'] or 'no sync start/end in the event stream'}")
# WARN/ERROR lines the nodes logged, grouped across logs (numbers folded), most frequent first. Some are
# expected from what the script does; they are labelled, not hidden.
import glob, re
EXPECTED = [
    ('connection closed by beta (node N) during the handshake',
     'alpha dials beta while beta starts or is StandAlone'),
    ('connection with beta failed (NetworkFailure): connection to beta lost',
     'beta stopped or disconnected by the script; lost connections around measured runs are checked separately'),
    ('connection with alpha failed (NetworkFailure): connection to alpha lost',
     'beta disconnected by the script, alpha reconnecting after `primary --force`, or alpha stopped'),
]
warn_re = re.compile(r'^[0-9:.]+ (WARN|ERROR) +\[[^]]*\] (.*)$')
groups = {}
for f in sorted(glob.glob(os.path.join(d, 'logs', '*-alpha.log')) + glob.glob(os.path.join(d, 'logs', '*-beta.log'))):
    name = os.path.basename(f)[:-4]
    for l in open(f, errors='replace'):
        m = warn_re.match(l.rstrip('\n'))
        if m:
            msg = m.group(1) + ' ' + m.group(2)
            g = groups.setdefault(re.sub(r'[0-9]+', 'N', msg), {'count': 0, 'example': msg, 'logs': []})
            g['count'] += 1
            if name not in g['logs']:
                g['logs'].append(name)
log_warnings = sorted(groups.values(), key=lambda g: -g['count'])
for g in log_warnings:
    why = next((w for k, w in EXPECTED if k in re.sub(r'[0-9]+', 'N', g['example'])), None)
    g['expected'] = why
    logs = ', '.join(g['logs'][:6]) + (f" and {len(g['logs']) - 6} more" if len(g['logs']) > 6 else '')
    notes.append(f"- repld log: {g['count']}× `{g['example'][:220]}` ({logs})" + (f" — expected: {why}" if why else ''))
if notes:
    lines += ['', 'Notes:'] + notes
table = '\n'.join(lines) + '\n'
open(os.path.join(d, 'table.md'), 'w').write(table)
json.dump({'meta': meta, 'runs': runs, 'summary': list(summary.values()), 'ratios': ratios,
           'resync_runs': rs, 'resync_summary': rsum, 'log_warnings': log_warnings}, open(os.path.join(d, 'results.json'), 'w'), indent=1)
print(table, end='')
# problems: failed or uncounted runs, incidents, resync rounds with a note (log warnings alone are not counted)
bad = sum(1 for r in runs if not r['ok']) + sum(1 for r in rs if r['note'] or not r['mb_s'])
bad += sum(1 for _ in open(os.path.join(d, 'failures.tsv'))) + sum(1 for _ in open(os.path.join(d, 'incidents.tsv')))
open(os.path.join(d, 'problems'), 'w').write(f'{bad}\n')
EOF
if [[ -n $OUTFILE ]]; then cp "$DIR/table.md" "$OUTFILE"; log "wrote $OUTFILE"; fi
log "wrote $DIR/table.md, $DIR/results.json, raw fio JSON under $DIR/raw/, logs under $DIR/logs/"
if [[ $(cat "$DIR/problems" 2>/dev/null || echo 1) != 0 ]]; then
  log "$(cat "$DIR/problems" 2>/dev/null || echo '?') problem(s): failed or uncounted runs, or incidents; see Notes"; exit 1
fi

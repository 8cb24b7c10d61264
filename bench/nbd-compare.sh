#!/usr/bin/env bash
# nbd-compare.sh — benchmark replstor's NBD server against nbdkit (file plugin), nbd-server and qemu-nbd
# with fio's nbd engine (libnbd) over loopback, one connection, interleaved rounds.
#
# Usage: bench/nbd-compare.sh [--rounds N] [--runtime SECONDS] [--size SIZE] [--media tmpfs,disk]
#                             [--servers replstor,nbdkit,nbd-server,qemu-nbd] [--warmup SECONDS] [--out DIR]
# See bench/README.md for what is measured and how to read the table.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
REPLD="$SCRIPT_DIR/../bin/repld"
PY=/usr/bin/python3            # Debian's python3 (stdlib only), not a pyenv shim
PORT_BASE=${NBD_COMPARE_PORT_BASE:-10870}
EXPORT=bench
QEMU_CACHE=writeback           # the same page-cache path the other servers use

ROUNDS=3
RUNTIME=15
SIZE=1G
MEDIA=tmpfs,disk
SERVERS=replstor,nbdkit,nbd-server,qemu-nbd
WARMUP=5
OUT=

ALL_SERVERS=(replstor nbdkit nbd-server qemu-nbd)
# name|fio rw|bs|iodepth|label
WORKLOADS=(
  "randwrite-4k-qd32|randwrite|4k|32|4k randwrite QD32"
  "randread-4k-qd32|randread|4k|32|4k randread QD32"
  "seqwrite-1m-qd8|write|1M|8|1M seq write QD8"
  "seqread-1m-qd8|read|1M|8|1M seq read QD8"
  "randwrite-4k-qd1|randwrite|4k|1|4k randwrite QD1 (latency)"
)

usage() {
  cat <<EOF
Usage: $(basename "$0") [options]
  --rounds N          interleaved rounds per workload (default $ROUNDS); the table shows medians
  --runtime SECONDS   fio runtime per run (default $RUNTIME)
  --size SIZE         backing file size per server, e.g. 256M, 1G (default $SIZE)
  --media LIST        comma list of tmpfs,disk (default $MEDIA)
  --servers LIST      comma list of replstor,nbdkit,nbd-server,qemu-nbd (default $SERVERS)
  --warmup SECONDS    unrecorded 4k randrw QD32 warm-up per server after start, 0 = none (default $WARMUP)
  --out DIR           output directory (default bench/results/<date>)
Env: NBD_COMPARE_PORT_BASE (first loopback port to try, default 10870; busy ports are skipped)
EOF
}

die() { echo "nbd-compare: error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

while (($#)); do
  opt=$1; val=
  case $opt in
    --*=*) val=${opt#*=}; opt=${opt%%=*} ;;
    -h|--help) usage; exit 0 ;;
  esac
  case $opt in
    --rounds|--runtime|--size|--media|--servers|--warmup|--out)
      if [[ -z $val ]]; then (($# >= 2)) || die "$opt needs a value"; val=$2; shift; fi ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  case $opt in
    --rounds) ROUNDS=$val ;; --runtime) RUNTIME=$val ;; --size) SIZE=$val ;; --media) MEDIA=$val ;;
    --servers) SERVERS=$val ;; --warmup) WARMUP=$val ;; --out) OUT=$val ;;
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

IFS=, read -r -a MEDIA_LIST <<<"$MEDIA"
for m in "${MEDIA_LIST[@]}"; do [[ $m == tmpfs || $m == disk ]] || die "unknown medium '$m' (tmpfs, disk)"; done
((${#MEDIA_LIST[@]})) || die "--media is empty"
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
((${#SERVER_LIST[@]})) || die "--servers is empty"
for s in "${SERVER_LIST[@]}"; do
  [[ " ${ALL_SERVERS[*]} " == *" $s "* ]] || die "unknown server '$s' (${ALL_SERVERS[*]})"
done

# ---------------------------------------------------------------- prerequisites
need() {  # need CMD DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 || MISSING+=("$1 (Debian package: $2)")
}
MISSING=()
need fio fio
need ss iproute2
need timeout coreutils
[[ -x $PY ]] || MISSING+=("$PY (Debian package: python3)")
for s in "${SERVER_LIST[@]}"; do
  case $s in
    nbdkit) need nbdkit nbdkit ;;
    nbd-server) need nbd-server nbd-server ;;
    qemu-nbd) need qemu-nbd qemu-utils ;;
  esac
done
if ((${#MISSING[@]})); then
  printf 'nbd-compare: error: missing tool: %s\n' "${MISSING[@]}" >&2
  echo "nbd-compare: install with: apt-get install <package>" >&2
  exit 1
fi
fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no 'nbd' ioengine (Debian's fio package has it; it needs libnbd0)"

# ---------------------------------------------------------------- output layout
if [[ -z $OUT ]]; then OUT="$SCRIPT_DIR/results/$(date +%Y%m%d-%H%M%S)"; fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
mkdir -p "$OUT/raw" "$OUT/logs"
MANIFEST="$OUT/manifest.tsv"      # medium workload server round json fio_rc
AVAIL="$OUT/servers.tsv"          # medium server status port reason
META="$OUT/meta.tsv"
: >"$MANIFEST"; : >"$AVAIL"; : >"$META"

# ---------------------------------------------------------------- process bookkeeping / cleanup
declare -A SRV_PIDS=()     # "medium/server" -> "pid [pid...]"  (only processes this script started)
declare -A PID_ID=()       # pid -> "comm starttime" recorded at start, re-checked before any kill
declare -A UNAVAIL=()      # "medium/server" -> reason
declare -A PORT_OF=()
TMP_DIRS=()

proc_id() {  # "comm starttime" of a live pid, or empty
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  local comm=${stat#*(}; comm=${comm%)*}
  local rest=${stat##*) }
  local -a f; read -r -a f <<<"$rest"
  echo "$comm ${f[19]}"
}
register_pid() { PID_ID[$2]=$(proc_id "$2"); SRV_PIDS[$1]="${SRV_PIDS[$1]:-} $2"; }
# same_proc PID: still the process we registered? Compares the start time only: bin/repld execs java,
# which changes the command name (repld -> java) but not the start time.
same_proc() { local now; now=$(proc_id "$1"); [[ -n $now && ${now##* } == "${PID_ID[$1]##* }" ]]; }

stop_pid() {
  local pid=$1 i
  [[ -n ${PID_ID[$pid]:-} ]] || return 0
  if same_proc "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do same_proc "$pid" || break; sleep 0.1; done
    if same_proc "$pid"; then
      log "pid $pid (${PID_ID[$pid]%% *}) ignored SIGTERM for 10s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  { wait "$pid"; } 2>/dev/null || true   # reap if it is our child (replstor); no-op otherwise
  unset "PID_ID[$pid]"
}
stop_server() {  # key
  local key=$1 pid
  for pid in ${SRV_PIDS[$key]:-}; do stop_pid "$pid"; done
  unset "SRV_PIDS[$key]"
}

cleanup() {
  local rc=$? key d
  set +e
  trap - EXIT INT TERM
  for key in "${!SRV_PIDS[@]}"; do stop_server "$key"; done
  for d in "${TMP_DIRS[@]}"; do [[ -n $d && -d $d ]] && rm -rf -- "$d"; done
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---------------------------------------------------------------- helpers
port_busy() { [[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]]; }
NEXT_PORT=$PORT_BASE
alloc_port() {
  while port_busy "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
  PORT=$NEXT_PORT; NEXT_PORT=$((NEXT_PORT + 1))
}
listener_pids() { ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u; }
is_descendant() {  # is_descendant PID ANCESTOR
  local p=$1 i
  for ((i = 0; i < 32 && p > 1; i++)); do
    [[ $p == "$2" ]] && return 0
    p=$(awk '/^PPid:/{print $2}' "/proc/$p/status" 2>/dev/null) || return 1
    [[ -n $p ]] || return 1
  done
  return 1
}
# wait_listen PID PORT TIMEOUT_S: wait until PID (or a descendant) listens on PORT; sets LISTEN_PID
wait_listen() {
  local pid=$1 port=$2 t=$3 i lp
  for ((i = 0; i < t * 5; i++)); do
    [[ -n $(proc_id "$pid") ]] || { WAIT_ERR="process $pid exited before listening"; return 1; }
    for lp in $(listener_pids "$port"); do
      if is_descendant "$lp" "$pid"; then LISTEN_PID=$lp; return 0; fi
    done
    sleep 0.2
  done
  WAIT_ERR="not listening on 127.0.0.1:$port after ${t}s"; return 1
}
read_pidfile() {  # read_pidfile FILE TIMEOUT_S -> PIDFILE_PID
  local f=$1 t=$2 i
  for ((i = 0; i < t * 10; i++)); do
    if [[ -s $f ]]; then PIDFILE_PID=$(tr -dc '0-9' <"$f"); [[ -n $PIDFILE_PID ]] && return 0; fi
    sleep 0.1
  done
  return 1
}
log_tail() { tail -n 5 "$1" 2>/dev/null | tr '\n' ' ' | cut -c1-400; }

make_image() {  # make_image PATH MEDIUM: SIZE_BYTES of /dev/urandom
  head -c "$SIZE_BYTES" /dev/urandom >"$1"
  if [[ $2 == disk ]]; then   # make it durable, then evict it from the page cache so every server starts cold
    "$PY" -c 'import os,sys
fd=os.open(sys.argv[1],os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)' "$1"
  fi
}

# start_server MEDIUM SERVER IMAGE WORKDIR -> 0 and PORT_OF[key], or 1 with START_ERR
start_server() {
  local medium=$1 srv=$2 img=$3 wd=$4 key="$1/$2" pid rc
  local slog="$OUT/logs/$medium-$srv.log" pidf="$wd/$srv.pid"
  alloc_port; local port=$PORT
  PORT_OF[$key]=$port
  START_ERR=
  case $srv in
    replstor)
      if [[ ! -e $REPLD ]]; then START_ERR="$REPLD does not exist (build the launcher first)"; return 1; fi
      if [[ ! -x $REPLD ]]; then START_ERR="$REPLD is not executable"; return 1; fi
      "$REPLD" serve --listen "127.0.0.1:$port" --export "$EXPORT=$img" >"$slog" 2>&1 </dev/null &
      pid=$!
      register_pid "$key" "$pid"
      if ! wait_listen "$pid" "$port" 90; then START_ERR="replstor: $WAIT_ERR; log: $(log_tail "$slog")"; return 1; fi
      if [[ $LISTEN_PID != "$pid" ]]; then   # launcher did not exec: also track the real server process
        log "note: bin/repld did not exec java (launcher pid $pid, listener pid $LISTEN_PID); tracking both"
        register_pid "$key" "$LISTEN_PID"
      fi
      ;;
    nbdkit)
      rc=0; nbdkit -P "$pidf" -i 127.0.0.1 -p "$port" --log=stderr file "$img" >"$slog" 2>&1 </dev/null || rc=$?
      ((rc == 0)) || { START_ERR="nbdkit exited with $rc: $(log_tail "$slog")"; return 1; }
      read_pidfile "$pidf" 20 || { START_ERR="nbdkit wrote no pidfile"; return 1; }
      register_pid "$key" "$PIDFILE_PID"
      wait_listen "$PIDFILE_PID" "$port" 20 || { START_ERR="nbdkit: $WAIT_ERR"; return 1; }
      ;;
    nbd-server)
      local conf="$wd/nbd-server-$medium.conf"
      cat >"$conf" <<EOF
[generic]
    port = $port
    listenaddr = 127.0.0.1
    allowlist = true
[$EXPORT]
    exportname = $img
    flush = true
    fua = true
    trim = true
EOF
      cp "$conf" "$OUT/logs/"
      rc=0; nbd-server -C "$conf" -p "$pidf" >"$slog" 2>&1 </dev/null || rc=$?
      ((rc == 0)) || { START_ERR="nbd-server exited with $rc: $(log_tail "$slog")"; return 1; }
      read_pidfile "$pidf" 20 || { START_ERR="nbd-server wrote no pidfile"; return 1; }
      register_pid "$key" "$PIDFILE_PID"
      wait_listen "$PIDFILE_PID" "$port" 20 || { START_ERR="nbd-server: $WAIT_ERR"; return 1; }
      ;;
    qemu-nbd)
      rc=0
      qemu-nbd --fork --pid-file="$pidf" -t -e 16 -b 127.0.0.1 -p "$port" -x "$EXPORT" -f raw \
        --cache="$QEMU_CACHE" "$img" >"$slog" 2>&1 </dev/null || rc=$?
      ((rc == 0)) || { START_ERR="qemu-nbd exited with $rc: $(log_tail "$slog")"; return 1; }
      read_pidfile "$pidf" 20 || { START_ERR="qemu-nbd wrote no pidfile"; return 1; }
      register_pid "$key" "$PIDFILE_PID"
      wait_listen "$PIDFILE_PID" "$port" 20 || { START_ERR="qemu-nbd: $WAIT_ERR"; return 1; }
      ;;
  esac
  return 0
}

server_alive() {  # every pid we track for key is still the process we started
  local pid
  for pid in ${SRV_PIDS[$1]:-}; do same_proc "$pid" || return 1; done
  [[ -n ${SRV_PIDS[$1]:-} ]]
}

mark_unavailable() {  # key reason
  UNAVAIL[$1]=$2
  log "$1: UNAVAILABLE: $2"
  stop_server "$1"
}

# run_fio OUTFILE PORT NAME RW BS QD RUNTIME
run_fio() {
  local rc=0
  {
    echo "=== $(date +%T) $3 port=$2 rw=$4 bs=$5 qd=$6 runtime=$7 -> $1"
    timeout -k 10 $(($7 + 60)) fio --name="$3" --ioengine=nbd --uri="nbd://127.0.0.1:$2/$EXPORT" \
      --rw="$4" --bs="$5" --iodepth="$6" --numjobs=1 --time_based --runtime="$7" \
      --lat_percentiles=1 --output-format=json --output="$1" || rc=$?
    echo "=== rc=$rc"
  } >>"$OUT/logs/fio.log" 2>&1
  return "$rc"
}

one_line() {  # one_line JSON RW -> "IOPS MB/s p50 p99"
  "$PY" - "$1" "$2" <<'EOF' 2>/dev/null || echo "(unparseable fio output)"
import json, sys
t = open(sys.argv[1]).read(); j = json.loads(t[t.index('{'):])['jobs'][0]
d = j['read' if sys.argv[2] in ('read', 'randread') else 'write']
pc = d['lat_ns'].get('percentile') or d['clat_ns'].get('percentile') or {}
print(f"{d['iops']:>9,.0f} IOPS {d['bw_bytes']/1e6:>8,.1f} MB/s  p50 {pc.get('50.000000',0)/1e3:>7,.0f} us  p99 {pc.get('99.000000',0)/1e3:>8,.0f} us"
      + (f"  fio error={j['error']}" if j.get('error') else ''))
EOF
}

# ---------------------------------------------------------------- metadata
ver() { "$@" 2>&1 | head -n1 | tr -d '\r' || true; }
CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
{
  printf 'date\t%s\n' "$(date '+%Y-%m-%d %H:%M:%S %Z')"
  printf 'kernel\t%s\n' "$(uname -r)"
  printf 'nproc\t%s\n' "$(nproc)"
  printf 'cpu\t%s\n' "${CPU:-unknown}"
  printf 'mem\t%s\n' "$(awk '/^MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  printf 'loadavg_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'ver_fio\t%s\n' "$(ver fio --version)"
  sel() { [[ " ${SERVER_LIST[*]} " == *" $1 "* ]]; }
  if sel nbdkit; then printf 'ver_nbdkit\t%s\n' "$(ver nbdkit --version)"; fi
  if sel nbd-server; then printf 'ver_nbd-server\t%s\n' "nbd-server $(nbd-server -V 2>&1 | grep -o 'version [0-9.]*' | head -1 | cut -d' ' -f2)"; fi
  if sel qemu-nbd; then printf 'ver_qemu-nbd\t%s\n' "$(ver qemu-nbd --version)"; fi
  if sel replstor; then
    jar="$REPO_DIR/cluster/target/cluster.jar"
    printf 'ver_replstor\t%s\n' "replstor $(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo 'no-git-rev')$(
      [[ -f $jar ]] && date -r "$jar" '+ (cluster.jar built %Y-%m-%d %H:%M)')"
    printf 'ver_java\t%s\n' "$(java -version 2>&1 | head -n1 | sed 's/"//g' || echo unknown)"
  fi
  printf 'rounds\t%s\nruntime\t%s\nsize\t%s\nsize_bytes\t%s\nwarmup\t%s\n' "$ROUNDS" "$RUNTIME" "$SIZE" "$SIZE_BYTES" "$WARMUP"
  printf 'media\t%s\nservers\t%s\nqemu_cache\t%s\nout\t%s\n' "${MEDIA_LIST[*]}" "${SERVER_LIST[*]}" "$QEMU_CACHE" "$OUT"
} >"$META"

# ---------------------------------------------------------------- main loop
NSRV=${#SERVER_LIST[@]}
free_bytes() { df -B1 --output=avail "$1" | tail -n1 | tr -d ' '; }
log "output: $OUT"
log "servers: ${SERVER_LIST[*]}; media: ${MEDIA_LIST[*]}; rounds=$ROUNDS runtime=${RUNTIME}s size=$SIZE warmup=${WARMUP}s"

for medium in "${MEDIA_LIST[@]}"; do
  if [[ $medium == tmpfs ]]; then
    [[ -d /dev/shm ]] || die "/dev/shm does not exist"
    wd=$(mktemp -d /dev/shm/nbd-compare.XXXXXX)
  else
    wd=$(mktemp -d "$OUT/images-disk.XXXXXX")
    [[ $(df --output=fstype "$wd" | tail -n1) != tmpfs ]] || log "warning: --out is on tmpfs, the 'disk' medium is not a disk"
  fi
  TMP_DIRS+=("$wd")
  need_b=$((NSRV * SIZE_BYTES + (64 << 20)))
  (($(free_bytes "$wd") >= need_b)) || die "$medium: need $((need_b >> 20)) MiB free in $wd"

  log "== medium $medium: $wd; creating $NSRV x $SIZE images from /dev/urandom"
  for srv in "${SERVER_LIST[@]}"; do make_image "$wd/$srv.img" "$medium"; done

  for srv in "${SERVER_LIST[@]}"; do
    key="$medium/$srv"
    if start_server "$medium" "$srv" "$wd/$srv.img" "$wd"; then
      log "$key: listening on 127.0.0.1:${PORT_OF[$key]} (pid${SRV_PIDS[$key]})"
    else
      mark_unavailable "$key" "$START_ERR"
    fi
  done

  if ((WARMUP > 0)); then
    for srv in "${SERVER_LIST[@]}"; do
      key="$medium/$srv"; [[ -z ${UNAVAIL[$key]:-} ]] || continue
      log "$key: warm-up ${WARMUP}s (4k randrw QD32, not recorded)"
      if ! run_fio "$OUT/logs/warmup-$medium-$srv.json" "${PORT_OF[$key]}" warmup randrw 4k 32 "$WARMUP"; then
        mark_unavailable "$key" "warm-up fio run failed (see logs/fio.log, logs/$medium-$srv.log)"
      elif ! server_alive "$key"; then
        mark_unavailable "$key" "server exited during warm-up (see logs/$medium-$srv.log)"
      fi
    done
  fi

  for ((r = 1; r <= ROUNDS; r++)); do
    # rotate the server order each round so no server is always first/last after a given workload
    order=()
    for ((i = 0; i < NSRV; i++)); do order+=("${SERVER_LIST[$(((i + r - 1) % NSRV))]}"); done
    for wl in "${WORKLOADS[@]}"; do
      IFS='|' read -r wname rw bs qd label <<<"$wl"
      mkdir -p "$OUT/raw/$medium/$wname"
      for srv in "${order[@]}"; do
        key="$medium/$srv"; [[ -z ${UNAVAIL[$key]:-} ]] || continue
        json="$OUT/raw/$medium/$wname/$srv-r$r.json"
        rc=0; run_fio "$json" "${PORT_OF[$key]}" "$wname" "$rw" "$bs" "$qd" "$RUNTIME" || rc=$?
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$medium" "$wname" "$srv" "$r" "${json#"$OUT"/}" "$rc" >>"$MANIFEST"
        if ((rc == 0)); then
          log "[$medium r$r/$ROUNDS] $(printf '%-28s %-10s' "$label" "$srv") $(one_line "$json" "$rw")"
        else
          log "[$medium r$r/$ROUNDS] $(printf '%-28s %-10s' "$label" "$srv") fio FAILED rc=$rc (logs/fio.log)"
        fi
        if ! server_alive "$key"; then
          mark_unavailable "$key" "server exited during $wname round $r (see logs/$medium-$srv.log)"
        fi
      done
    done
  done

  for srv in "${SERVER_LIST[@]}"; do
    key="$medium/$srv"
    printf '%s\t%s\t%s\t%s\t%s\n' "$medium" "$srv" "$([[ -n ${UNAVAIL[$key]:-} ]] && echo unavailable || echo ok)" \
      "${PORT_OF[$key]:-}" "${UNAVAIL[$key]:-}" >>"$AVAIL"
    stop_server "$key"
  done
  rm -rf -- "$wd"
  log "== medium $medium done"
done
printf 'loadavg_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$META"

# ---------------------------------------------------------------- summary: results.json + table.md
"$PY" - "$OUT" <<'EOF'
import json, os, statistics, sys

out = sys.argv[1]
meta = dict(l.rstrip('\n').split('\t', 1) for l in open(os.path.join(out, 'meta.tsv')) if '\t' in l)
servers = meta['servers'].split()
media = meta['media'].split()
WL = [  # name, rw, key metric, label
    ('randwrite-4k-qd32', 'randwrite', 'iops', '4k randwrite QD32'),
    ('randread-4k-qd32', 'randread', 'iops', '4k randread QD32'),
    ('seqwrite-1m-qd8', 'write', 'mb_s', '1M seq write QD8'),
    ('seqread-1m-qd8', 'read', 'mb_s', '1M seq read QD8'),
    ('randwrite-4k-qd1', 'randwrite', 'p50_us', '4k randwrite QD1'),
]
wl_info = {w[0]: w for w in WL}

avail = {}
for l in open(os.path.join(out, 'servers.tsv')):
    f = l.rstrip('\n').split('\t')
    if len(f) >= 5:
        avail[(f[0], f[1])] = {'medium': f[0], 'server': f[1], 'status': f[2], 'port': f[3], 'reason': f[4]}

runs = []
for l in open(os.path.join(out, 'manifest.tsv')):
    medium, wname, srv, rnd, rel, rc = l.rstrip('\n').split('\t')
    rec = {'medium': medium, 'workload': wname, 'server': srv, 'round': int(rnd), 'fio_json': rel,
           'fio_rc': int(rc), 'ok': False}
    try:
        t = open(os.path.join(out, rel)).read()
        job = json.loads(t[t.index('{'):])['jobs'][0]
        d = job['read' if wl_info[wname][1] in ('read', 'randread') else 'write']
        pc = d['lat_ns'].get('percentile') or d['clat_ns'].get('percentile') or {}
        rec.update(iops=d['iops'], mb_s=d['bw_bytes'] / 1e6,
                   p50_us=pc.get('50.000000', 0) / 1e3, p99_us=pc.get('99.000000', 0) / 1e3,
                   fio_error=job.get('error', 0), total_ios=d.get('total_ios'))
        rec['ok'] = int(rc) == 0 and not job.get('error') and d.get('total_ios', 0) > 0
    except Exception as e:  # missing / truncated JSON
        rec['parse_error'] = repr(e)
    runs.append(rec)

summary = {}
for medium in media:
    for wname, rw, key, label in WL:
        for srv in servers:
            ok = [r for r in runs if r['ok'] and (r['medium'], r['workload'], r['server']) == (medium, wname, srv)]
            if not ok:
                continue
            s = {'medium': medium, 'workload': wname, 'server': srv, 'rounds_ok': len(ok), 'key_metric': key}
            for m in ('iops', 'mb_s', 'p50_us', 'p99_us'):
                s[m + '_median'] = statistics.median(r[m] for r in ok)
                s[m + '_all'] = [round(r[m], 3) for r in sorted(ok, key=lambda r: r['round'])]
            vals = s[key + '_all']; med = s[key + '_median']
            s['key_spread'] = (max(vals) - min(vals)) / med if len(vals) > 1 and med else None
            summary[(medium, wname, srv)] = s

ratios = []
def ratio_for(medium, wname, key):
    rs = summary.get((medium, wname, 'replstor'))
    peers = [summary[(medium, wname, p)] for p in servers if p != 'replstor' and (medium, wname, p) in summary]
    if not rs or not peers:
        return None
    if key == 'p50_us':
        best = min(peers, key=lambda s: s['p50_us_median'])
        r = best['p50_us_median'] / rs['p50_us_median'] if rs['p50_us_median'] else None
    else:
        best = max(peers, key=lambda s: s[key + '_median'])
        r = rs[key + '_median'] / best[key + '_median'] if best[key + '_median'] else None
    rec = {'medium': medium, 'workload': wname, 'metric': key, 'replstor': rs[key + '_median'],
           'best_peer': best['server'], 'best_peer_value': best[key + '_median'], 'ratio': r}
    ratios.append(rec)
    return rec

def fmt(v, dec=1):
    if v is None:
        return 'n/a'
    return f'{v:,.0f}' if abs(v) >= 100 else f'{v:,.{dec}f}'

has_repl = 'replstor' in servers
vers = ', '.join(v for k, v in meta.items() if k.startswith('ver_') and v)
lines = []
lines.append(f"NBD server comparison — {meta['date']} · kernel {meta['kernel']} · nproc {meta['nproc']} · "
             f"CPU {meta['cpu']} · {meta.get('mem', '')} RAM · {vers}")
lines.append('')
lines.append(f"Settings: {meta['rounds']} round(s) × {meta['runtime']} s per run, {meta['size']} backing file per server "
             f"(pre-filled from /dev/urandom), warm-up {meta['warmup']} s, fio nbd engine (libnbd), 1 connection, "
             f"numjobs=1, loopback; qemu-nbd --cache={meta['qemu_cache']}. Values are medians over rounds; "
             f"MB/s = 1e6 B/s; latency = fio total latency. Load average start {meta['loadavg_start']}, "
             f"end {meta.get('loadavg_end', '?')}.")
lines.append('')
hdr = ['medium', 'workload', 'server', 'IOPS', 'MB/s', 'p50 µs', 'p99 µs', 'spread']
if has_repl:
    hdr.append('replstor / best peer')
lines.append('| ' + ' | '.join(hdr) + ' |')
lines.append('|' + '|'.join(['---'] * 3 + ['---:'] * (len(hdr) - 3)) + '|')
for medium in media:
    for wname, rw, key, label in WL:
        rat = ratio_for(medium, wname, key) if has_repl else None
        for srv in servers:
            s = summary.get((medium, wname, srv))
            row = [medium, label, srv]
            if s:
                spread = '–' if s['key_spread'] is None else f"{s['key_spread'] * 100:.0f}%"
                row += [fmt(s['iops_median'], 0), fmt(s['mb_s_median']), fmt(s['p50_us_median']),
                        fmt(s['p99_us_median']), spread]
            else:
                row += ['n/a'] * 5
            if has_repl:
                if srv == 'replstor':
                    row.append(f"**{rat['ratio']:.2f}×** vs {rat['best_peer']}" if rat and rat['ratio'] else 'n/a')
                else:
                    row.append('')
            lines.append('| ' + ' | '.join(row) + ' |')
lines.append('')
lines.append('spread = (max − min) / median of the key metric over rounds (IOPS for 4k QD32, MB/s for 1M, p50 for QD1).')
if has_repl:
    lines.append('replstor / best peer: IOPS (4k QD32) or MB/s (1M) of replstor ÷ best peer; for QD1 latency, '
                 'best-peer p50 ÷ replstor p50. > 1 means replstor is better.')
notes = [f"- {a['medium']}/{a['server']}: not measured — {a['reason']}" for a in avail.values() if a['status'] != 'ok']
failed = [r for r in runs if not r['ok']]
notes += [f"- {r['medium']}/{r['server']} {r['workload']} round {r['round']}: run failed (fio rc={r['fio_rc']}"
          f"{', ' + r['parse_error'] if r.get('parse_error') else ''})" for r in failed]
if notes:
    lines += ['', 'Notes:'] + notes
table = '\n'.join(lines) + '\n'
open(os.path.join(out, 'table.md'), 'w').write(table)

res = {'meta': meta, 'servers': list(avail.values()), 'runs': runs,
       'summary': list(summary.values()), 'ratios': ratios}
json.dump(res, open(os.path.join(out, 'results.json'), 'w'), indent=1)
print(table, end='')
EOF
log "wrote $OUT/table.md, $OUT/results.json, raw fio JSON under $OUT/raw/"

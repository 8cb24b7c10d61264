#!/bin/bash
# Two-node boot test of the appliance: two VMs from ONE image (a qcow2 overlay each of
# OUTDIR/replstor.raw) and two seeds (make-seed.sh: host name, node=alpha|beta, a static
# address on the cluster NIC, the same cluster file) form a replicated pair (resource r0, 256 MiB,
# a sparse file in each VM) over a qemu socket network. Both run checks/two-node.sh (fw_cfg
# opt/replstor/check), each its half of a switchover, in step over a serial link between the VMs:
# alpha attaches r0 (/dev/nbd0, auto-promote), writes a filesystem, detaches (auto-demote); beta
# attaches, finds the data, writes more, detaches; alpha attaches again and finds both.
# Passes when both VMs' second serial ports end the check with "CHECK-END rc=0".
#
# usage: appliance-image/boot-test-two-node.sh OUTDIR [CHECK_SCRIPT]
# Environment: BOOT_TEST_TIMEOUT (seconds for the whole test, default 900), BOOT_TEST_SMP
#   (vCPUs per VM, default 1: two VMs on a 2-core host), BOOT_TEST_MEM (MiB per VM, default
#   1536), BOOT_TEST_ACCEL (default tcg).
# Networks: per VM qemu user networking (DHCP), plus the cluster network: one UDP socket pair on
# 127.0.0.1 between the two VMs' second NICs (10.99.0.1/24, 10.99.0.2/24), and the check link:
# ttyS2 of alpha listens on a 127.0.0.1 TCP port, beta's connects to it. Ports are picked free.
# Writes OUTDIR/boot-test-two-node/{alpha,beta}-{console,result}.log, summary.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { printf 'boot-test-two-node.sh: error: %s\n' "$*" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 OUTDIR [CHECK_SCRIPT]"
OUT=$(cd "$1" && pwd)
CHECK=${2:-$HERE/checks/two-node.sh}
TIMEOUT=${BOOT_TEST_TIMEOUT:-900}
IMAGE=$OUT/replstor.raw
[ -f "$IMAGE" ] || die "$IMAGE not found: run appliance-image/build.sh $1 first"
[ -r "$CHECK" ] || die "check script $CHECK not readable"
for t in qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils ss:iproute2; do
  command -v "${t%%:*}" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "${t%%:*}" >/dev/null \
    || die "${t%%:*} missing (apt-get install ${t#*:})"
done
export PATH=$PATH:/usr/sbin:/sbin
LOGDIR=$OUT/boot-test-two-node
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

# A port nothing on 127.0.0.1 uses (TCP and UDP), not handed out before in this run.
used_ports=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 40000 ))
    case $used_ports in *" $p "*) continue ;; esac
    if [ -z "$(ss -Htuan "( sport = :$p or dport = :$p )" 2>/dev/null)" ]; then
      used_ports="$used_ports$p "
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}
port_alpha=$(free_port)   # alpha's end of the cluster network (UDP)
port_beta=$(free_port)    # beta's end
port_link=$(free_port)    # the check link (TCP, alpha listens)

# The cluster file, the same for both nodes. Timers for TCG: DRBD's defaults with a shorter
# connect-int (the nodes boot at the same time) and a ping-timeout a slow emulated CPU can meet.
cat > "$LOGDIR/cluster.toml" <<'EOF'
[cluster]
name = "boot-test"
# two VMs and no witness: each node decides alone, as DRBD without quorum
quorum = "off"

[[node]]
name = "alpha"
id = 0
address = "10.99.0.1:7789"
nbd = "10.99.0.1:10809"
admin = "/run/replstor/alpha.sock"

[[node]]
name = "beta"
id = 1
address = "10.99.0.2:7789"
nbd = "10.99.0.2:10809"
admin = "/run/replstor/beta.sock"

[[resource]]
name = "r0"
size = "256MiB"
connect-int = 5
ping-int = 10
ping-timeout = 20
timeout = 49

  [resource.on.alpha]
  disk = "/var/lib/replstor/r0.img"

  [resource.on.beta]
  disk = "/var/lib/replstor/r0.img"
EOF

declare -A mac=([alpha]=52:54:00:99:00:01 [beta]=52:54:00:99:00:02)
declare -A addr=([alpha]=10.99.0.1/24 [beta]=10.99.0.2/24)
declare -A netdev=(
  [alpha]="socket,id=c0,localaddr=127.0.0.1:$port_alpha,udp=127.0.0.1:$port_beta"
  [beta]="socket,id=c0,localaddr=127.0.0.1:$port_beta,udp=127.0.0.1:$port_alpha")
declare -A link=(
  [alpha]="tcp:127.0.0.1:$port_link,server=on,wait=off,nodelay=on"
  [beta]="tcp:127.0.0.1:$port_link,reconnect=1,nodelay=on")
declare -A qpid=() started=() ready=()

start=$(date +%s.%N)
elapsed() { echo "$(date +%s.%N) $start" | awk '{ printf "%.1f", $1 - $2 }'; }
cleanup() {
  local n
  for n in "${!qpid[@]}"; do kill "${qpid[$n]}" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

for n in alpha beta; do
  "$HERE/make-seed.sh" "$LOGDIR/$n-seed.tar" --hostname "$n" --node "$n" --config "$LOGDIR/cluster.toml" \
    --nic "cluster,${mac[$n]},${addr[$n]}" >/dev/null
  # one image, an overlay per node
  qemu-img create -q -f qcow2 -b "$IMAGE" -F raw "$LOGDIR/$n.qcow2"
  # alpha first: it listens for beta's end of the check link
  qemu-system-x86_64 -machine pc -accel "${BOOT_TEST_ACCEL:-tcg}" \
    -m "${BOOT_TEST_MEM:-1536}" -smp "${BOOT_TEST_SMP:-1}" \
    -display none -monitor none -no-reboot \
    -drive "file=$LOGDIR/$n.qcow2,format=qcow2" \
    -nic user \
    -netdev "${netdev[$n]}" -device "e1000,netdev=c0,mac=${mac[$n]}" \
    -serial "file:$LOGDIR/$n-console.log" -serial "file:$LOGDIR/$n-result.log" -serial "${link[$n]}" \
    -fw_cfg "name=opt/replstor/seed,file=$LOGDIR/$n-seed.tar" \
    -fw_cfg "name=opt/replstor/check,file=$CHECK" &
  qpid[$n]=$!
  started[$n]=$(elapsed)
  echo "boot-test-two-node: $n: qemu pid ${qpid[$n]} (cluster NIC ${addr[$n]}, udp 127.0.0.1:$([ $n = alpha ] && echo "$port_alpha" || echo "$port_beta"), link tcp 127.0.0.1:$port_link)"
  sleep 1
done

timed_out=no
while :; do
  alive=0
  for n in alpha beta; do
    if kill -0 "${qpid[$n]}" 2>/dev/null; then alive=$((alive + 1)); fi
    if [ -z "${ready[$n]:-}" ] && grep -aq 'CHECK-BEGIN' "$LOGDIR/$n-result.log" 2>/dev/null; then
      ready[$n]=$(elapsed)
      echo "boot-test-two-node: $n: check started $(awk -v a="${ready[$n]}" -v b="${started[$n]}" 'BEGIN { printf "%.1f", a - b }') s after its qemu start"
    fi
  done
  [ "$alive" -gt 0 ] || break
  if [ "$(elapsed | cut -d. -f1)" -ge "$TIMEOUT" ]; then
    timed_out=yes
    echo "boot-test-two-node: timeout after $TIMEOUT s; killing qemu" >&2
    cleanup
    break
  fi
  sleep 0.5
done
declare -A qrc=()
for n in alpha beta; do
  rc=0
  wait "${qpid[$n]}" || rc=$?
  qrc[$n]=$rc
done
trap - EXIT INT TERM
total_s=$(elapsed)

pass=yes
{
  echo "image=$IMAGE (a qcow2 overlay per node)"
  echo "check=$CHECK"
  echo "smp=${BOOT_TEST_SMP:-1} mem_mib=${BOOT_TEST_MEM:-1536} accel=${BOOT_TEST_ACCEL:-tcg}"
  echo "timed_out=$timed_out total_s=$total_s   # first qemu start to both powered off (host clock)"
  for n in alpha beta; do
    result=$(tr -d '\r' < "$LOGDIR/$n-result.log" 2>/dev/null || true)
    begin=$(grep -a -m1 '^CHECK-BEGIN' <<<"$result" || true)
    end=$(grep -a '^CHECK-END rc=' <<<"$result" | tail -n 1 || true)
    took=$(sed -n 's/.*check took \([0-9]*\) s.*/\1/p' <<<"$result" | tail -n 1)
    repld_usec=$(sed -n 's/.*ActiveEnterTimestampMonotonic=\([0-9]*\).*/\1/p' <<<"$begin")
    repld_s=$([ -n "$repld_usec" ] && awk -v u="$repld_usec" 'BEGIN { printf "%.1f", u / 1e6 }' || true)
    boot_s=$([ -n "${ready[$n]:-}" ] && awk -v a="${ready[$n]}" -v b="${started[$n]}" 'BEGIN { printf "%.1f", a - b }' || true)
    echo "$n: qemu_exit=${qrc[$n]} boot_to_check_s=${boot_s:-none} repld_active_at_s=${repld_s:-none}" \
         "check_s=${took:-none} result=${end:-no CHECK-END line}"
    [ "$end" = "CHECK-END rc=0" ] || pass=no
  done
} > "$LOGDIR/summary.txt"

if [ "$pass" = yes ]; then
  grep -a -E '^(ok|FAIL) ' "$LOGDIR/alpha-result.log" "$LOGDIR/beta-result.log" | tr -d '\r' | sed "s|$LOGDIR/||" || true
  cat "$LOGDIR/summary.txt"
  echo "boot-test-two-node: PASS"
  exit 0
fi
for n in alpha beta; do
  echo "===== $n: check output (ttyS1, $LOGDIR/$n-result.log) =====" >&2
  tr -d '\r' < "$LOGDIR/$n-result.log" >&2 2>/dev/null || true
  echo "===== $n: console (ttyS0, last 40 lines of $LOGDIR/$n-console.log) =====" >&2
  tr -d '\r' < "$LOGDIR/$n-console.log" 2>/dev/null | tail -n 40 >&2 || true
done
echo "=====" >&2
cat "$LOGDIR/summary.txt" >&2
echo "boot-test-two-node: FAIL" >&2
exit 1

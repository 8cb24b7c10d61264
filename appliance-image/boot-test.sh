#!/bin/bash
# Boot test of the appliance: boots OUTDIR/replstor.raw under qemu (TCG, snapshot=on, so the
# image is not changed) with a check script as qemu fw_cfg opt/replstor/check, and passes when the
# second serial port's output ends the check with "CHECK-END rc=0". Exit status = result.
#
# usage: appliance-image/boot-test.sh [--seeded] OUTDIR [CHECK_SCRIPT]
#   (default)     single node without a seed: the demo volume; check checks/single-node.sh
#   --seeded      boots a 4 GiB qcow2 overlay of OUTDIR/replstor.qcow2 with a test seed (made
#                 with make-seed.sh: hostname, a second NIC with a static address, a cluster
#                 file, an SSH key, a root password hash); check checks/seeded.sh
#   CHECK_SCRIPT  another check script to run instead
# Environment: BOOT_TEST_TIMEOUT (seconds, default 600), BOOT_TEST_SMP (default 2),
#   BOOT_TEST_MEM (MiB, default 2048), BOOT_TEST_ACCEL (default tcg).
# Writes OUTDIR/boot-test[-seeded]/{console.log,result.log,summary.txt}. Networking is qemu user
# mode only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { printf 'boot-test.sh: error: %s\n' "$*" >&2; exit 2; }
seeded=no
if [ "${1:-}" = --seeded ]; then seeded=yes; shift; fi
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 [--seeded] OUTDIR [CHECK_SCRIPT]"
OUT=$(cd "$1" && pwd)
TIMEOUT=${BOOT_TEST_TIMEOUT:-600}
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"

if [ "$seeded" = no ]; then
  LOGDIR=$OUT/boot-test
  CHECK=${2:-$HERE/checks/single-node.sh}
  IMAGE=$OUT/replstor.raw
  [ -f "$IMAGE" ] || die "$IMAGE not found: run appliance-image/build.sh $1 first"
  mkdir -p "$LOGDIR"
  # snapshot=on: writes go to a temporary overlay, the image stays as built
  qemu_args=(-drive "file=$IMAGE,format=raw,snapshot=on" -nic user)
else
  LOGDIR=$OUT/boot-test-seeded
  IMAGE=$OUT/replstor.qcow2
  [ -f "$IMAGE" ] || die "$IMAGE not found: run appliance-image/build.sh $1 first"
  command -v ssh-keygen >/dev/null || die "ssh-keygen missing (apt-get install openssh-client)"
  command -v qemu-img >/dev/null || die "qemu-img missing (apt-get install qemu-utils)"
  rm -rf "$LOGDIR"
  mkdir -p "$LOGDIR"
  # the seed holds the values checks/seeded.sh expects
  ssh-keygen -q -t ed25519 -N '' -C replstor-seed-test -f "$LOGDIR/test-key"
  printf '%s\n' '[nbd]' 'listen = "0.0.0.0:10809"' '' '[[export]]' 'name = "vol0"' \
    'path = "/var/lib/replstor/vol0.img"' 'size = "256MiB"' 'description = "seeded test volume"' \
    > "$LOGDIR/replstor.toml"
  "$HERE/make-seed.sh" "$LOGDIR/seed.tar" --hostname seedtest \
    --nic cluster,52:54:00:00:77:0b,192.168.77.11/24 --dns 10.0.2.3 \
    --config "$LOGDIR/replstor.toml" --ssh-key "$LOGDIR/test-key.pub" \
    --password-hash '$6$replstorseedtest$6AAcUJQM77Cxd1eTPSX.O09cakLBOSo2hoM3TuPEtxqci4Pv1TX7IiYKrWxIVE8Sbgu8SSbMPXxw7qkFQKpA01' \
    >/dev/null
  CHECK=${2:-$LOGDIR/check.sh}
  if [ -z "${2:-}" ]; then
    # the private half of the seed's key, so the check can log in over SSH inside the VM
    { echo '#!/bin/bash'; printf "SSH_TEST_KEY='%s'\n" "$(cat "$LOGDIR/test-key")"
      tail -n +2 "$HERE/checks/seeded.sh"; } > "$CHECK"
  fi
  # a disk larger than the image: the root partition must grow into it (replstor-growroot)
  qemu-img create -q -f qcow2 -b "$IMAGE" -F qcow2 "$LOGDIR/disk.qcow2" 4G
  qemu_args=(-drive "file=$LOGDIR/disk.qcow2,format=qcow2"
             -nic user -nic "user,model=e1000,mac=52:54:00:00:77:0b,restrict=on"
             -fw_cfg "name=opt/replstor/seed,file=$LOGDIR/seed.tar")
fi
[ -r "$CHECK" ] || die "check script $CHECK not readable"
CONSOLE=$LOGDIR/console.log
RESULT=$LOGDIR/result.log
SUMMARY=$LOGDIR/summary.txt
rm -f "$CONSOLE" "$RESULT" "$SUMMARY"

# The plain invocation (IDE disk, e1000 NIC on user networking) plus: no display, console on ttyS0 to a file, the
# check's output on ttyS1 to another file, no reboot (a poweroff or panic ends qemu).
qemu-system-x86_64 -machine pc -accel "${BOOT_TEST_ACCEL:-tcg}" \
  -m "${BOOT_TEST_MEM:-2048}" -smp "${BOOT_TEST_SMP:-2}" \
  -display none -monitor none -no-reboot \
  "${qemu_args[@]}" \
  -serial "file:$CONSOLE" -serial "file:$RESULT" \
  -fw_cfg "name=opt/replstor/check,file=$CHECK" &
qpid=$!
start=$(date +%s.%N)
trap 'kill "$qpid" 2>/dev/null || true' EXIT INT TERM
elapsed() { echo "$(date +%s.%N) $start" | awk '{ printf "%.1f", $1 - $2 }'; }

ready_s=
timed_out=no
while kill -0 "$qpid" 2>/dev/null; do
  if [ -z "$ready_s" ] && grep -aq 'CHECK-BEGIN' "$RESULT" 2>/dev/null; then
    ready_s=$(elapsed)
    echo "boot-test: check started $ready_s s after qemu start"
  fi
  if [ "$(elapsed | cut -d. -f1)" -ge "$TIMEOUT" ]; then
    timed_out=yes
    echo "boot-test: timeout after $TIMEOUT s; killing qemu (pid $qpid)" >&2
    kill "$qpid" 2>/dev/null || true
    break
  fi
  sleep 0.5
done
qrc=0
wait "$qpid" || qrc=$?
trap - EXIT INT TERM
total_s=$(elapsed)

result=$(tr -d '\r' < "$RESULT" 2>/dev/null || true)
begin=$(grep -a -m1 '^CHECK-BEGIN' <<<"$result" || true)
end=$(grep -a '^CHECK-END rc=' <<<"$result" | tail -n 1 || true)
guest_uptime=$(sed -n 's/.*uptime=\([0-9.]*\).*/\1/p' <<<"$begin")
repld_usec=$(sed -n 's/.*ActiveEnterTimestampMonotonic=\([0-9]*\).*/\1/p' <<<"$begin")
repld_s=$([ -n "$repld_usec" ] && awk -v u="$repld_usec" 'BEGIN { printf "%.1f", u / 1e6 }' || true)

{
  echo "image=$IMAGE"
  echo "check=$CHECK"
  echo "qemu_exit=$qrc timed_out=$timed_out total_s=$total_s"
  echo "boot_to_check_s=${ready_s:-none}   # qemu start to the check's first line (host clock)"
  echo "guest_uptime_at_check_s=${guest_uptime:-none}"
  echo "repld_active_at_s=${repld_s:-none}   # ActiveEnterTimestampMonotonic, since kernel start"
  echo "result=${end:-no CHECK-END line}"
} > "$SUMMARY"

if [ "$end" = "CHECK-END rc=0" ]; then
  cat "$SUMMARY"
  echo "boot-test: PASS"
  exit 0
fi
echo "===== check output (ttyS1, $RESULT) =====" >&2
cat <<<"$result" >&2
echo "===== console (ttyS0, last 60 lines of $CONSOLE) =====" >&2
tr -d '\r' < "$CONSOLE" 2>/dev/null | tail -n 60 >&2 || true
echo "=====" >&2
cat "$SUMMARY" >&2
echo "boot-test: FAIL" >&2
exit 1

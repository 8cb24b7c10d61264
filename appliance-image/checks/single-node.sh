#!/bin/bash
# Single-node boot check. Runs inside the appliance (handed in as qemu fw_cfg opt/replstor/check
# by boot-test.sh); its output goes to the second serial port, and the runner adds
# "CHECK-END rc=N" after it. Exit status: number of failed steps (0 = pass).
set -u
failed=0
step() {   # step NAME COMMAND...: runs COMMAND (commands bounded by timeout, functions by their
           # own loops), reports ok/FAIL with its output
  local name=$1 rc=0
  shift
  echo "--- $name: $*"
  if [ "$(type -t "$1")" = function ]; then "$@" 2>&1 || rc=$?; else timeout 120 "$@" 2>&1 || rc=$?; fi
  if [ "$rc" = 0 ]; then echo "ok   $name"; else echo "FAIL $name (rc=$rc)"; failed=$((failed + 1)); fi
  return "$rc"
}

echo "ready: uptime=$(cut -d' ' -f1 /proc/uptime)s $(systemctl show repld -p ActiveEnterTimestampMonotonic)"
echo "release: $(tr '\n' ' ' < /etc/replstor/release)"
version=$(sed -n 's/^version=//p' /etc/replstor/release)
# where the start-up went (seconds since kernel start): the first boot's new backing file, repld ready
journalctl -b -u repld -o short-monotonic --no-pager | grep -E "Starting repld|new backing file|ready after|Started repld" | sed 's/^/timing: /'

# ownership survives a rootless build (files come out of a user namespace)
step ownership bash -c 'stat -c "%n %U:%G %a" /etc/shadow /opt/replstor/cluster/cluster.jar /usr/local/bin/repld /root
  [ "$(stat -c %U:%G /etc/shadow)" = root:shadow ] && [ "$(stat -c %U /opt/replstor/cluster/cluster.jar)" = root ] && [ "$(stat -c %a /root)" = 700 ]'
step root-locked bash -c '[ "$(getent shadow root | cut -d: -f2)" = "!" ]'
step repld-active test "$(systemctl is-active repld)" = active || systemctl status repld --no-pager -l | tail -n 20
step replctl-version bash -c 'out=$(replctl --version) || exit 1; echo "$out"; grep -qF -- "$1" <<<"$out"' _ "$version"
step replctl-status replctl status
step nbd-list nbd-client -l 127.0.0.1 10809

# `replctl attach demo`: the kernel NBD client on the node's own export, /dev/nbd0 (auto-promote);
# a filesystem on it; `replctl detach demo` (auto-demote)
mnt=/mnt/check
mkdir -p "$mnt"
last_status=
status_matches() {   # status_matches PATTERN...: `replctl status demo` matches every pattern (3 tries)
  local out p ok
  for _ in 1 2 3; do
    out=$(replctl status demo 2>&1)
    last_status=$out
    ok=yes
    for p in "$@"; do grep -qE -- "$p" <<<"$out" || { ok=no; break; }; done
    [ $ok = yes ] && break
    sleep 1
  done
  echo "$out"
  [ $ok = yes ] || echo "(not matched: $p)"
  [ $ok = yes ]
}
attach() {
  local dev
  dev=$(replctl attach demo) || return 1
  echo "replctl attach demo: $dev"
  [ "$dev" = /dev/nbd0 ] && [ -b /dev/nbd0 ] || return 1
  echo "/dev/nbd0: $(blockdev --getsize64 /dev/nbd0) bytes"
  [ "$(blockdev --getsize64 /dev/nbd0)" -eq $((1 << 30)) ]
}
refused_detach() {   # mounted: detach must refuse and leave the device attached
  local out rc=0
  out=$(replctl detach demo 2>&1) || rc=$?
  echo "replctl detach demo (mounted): exit $rc: $out"
  [ "$rc" != 0 ] && grep -q mounted <<<"$out" && [ "$(blockdev --getsize64 /dev/nbd0)" -eq $((1 << 30)) ]
}
data() {
  step attach attach || return
  step primary-with-device status_matches "^demo role:Primary" "disk:UpToDate device:/dev/nbd0" || return
  step mkfs mkfs.ext4 -q -F /dev/nbd0 || return
  step mount mount /dev/nbd0 "$mnt" || return
  step write bash -c "head -c 8M /dev/urandom > $mnt/data.bin && echo hello-replstor > $mnt/hello.txt && sha256sum $mnt/data.bin > /run/data.sha256 && sync"
  step detach-refused-while-mounted refused_detach
  step umount umount "$mnt" || return
  step e2fsck e2fsck -fn /dev/nbd0
  step read-back bash -c "mount -o ro /dev/nbd0 $mnt && sha256sum -c /run/data.sha256 && grep -q hello-replstor $mnt/hello.txt; rc=\$?; umount $mnt; exit \$rc"
  step detach replctl detach demo || return
  step device-released bash -c '[ "$(blockdev --getsize64 /dev/nbd0 2>/dev/null || echo 0)" = 0 ] && echo "/dev/nbd0: released"'
  demoted() { status_matches "^demo role:Secondary" "disk:UpToDate" && ! grep -q device: <<<"$last_status"; }
  step demoted-no-device demoted
}
data || { echo "data path stopped at the first failure"; mountpoint -q "$mnt" && umount "$mnt"; replctl detach demo >/dev/null 2>&1; }

# the service: restarted after a crash, stopped cleanly by SIGTERM
crash_and_restart() {
  local pid
  pid=$(systemctl show repld -p MainPID --value)
  kill -KILL "$pid"
  for _ in $(seq 1 240); do
    [ "$(systemctl show repld -p MainPID --value)" != "$pid" ] && [ "$(systemctl is-active repld)" = active ] && break
    sleep 0.5
  done
  systemctl show repld -p NRestarts -p MainPID -p ActiveState
  [ "$(systemctl is-active repld)" = active ] && [ "$(systemctl show repld -p NRestarts --value)" -ge 1 ]
}
step restart-on-failure crash_and_restart
# after the crash: the volume is attached again and holds what was written (a resource without
# peers is UpToDate after a restart: its disk is the only copy)
reattach_read() {
  attach || return 1
  mount -o ro /dev/nbd0 "$mnt" && sha256sum -c /run/data.sha256 && grep -q hello-replstor "$mnt/hello.txt"
  local rc=$?
  umount "$mnt"
  return $rc
}
step reattach-after-crash reattach_read
# SIGTERM with /dev/nbd0 still attached: repld detaches it, then exits 0
clean_stop() {
  systemctl stop repld
  systemctl show repld -p Result -p ExecMainCode -p ExecMainStatus -p ActiveState
  journalctl -u repld --no-pager -o cat -n 30 | grep -iE "detach|stopped" | tail -n 5
  echo "/dev/nbd0 size after stop: $(blockdev --getsize64 /dev/nbd0 2>/dev/null || echo none)"
  [ "$(systemctl show repld -p Result --value)" = success ] && [ "$(systemctl show repld -p ExecMainStatus --value)" = 0 ] \
    && [ "$(blockdev --getsize64 /dev/nbd0 2>/dev/null || echo 0)" = 0 ]
}
step clean-stop-detaches clean_stop

if [ "$failed" != 0 ]; then
  echo "--- repld journal (last 40 lines)"
  journalctl -u repld --no-pager -n 40
fi
echo "failed steps: $failed"
exit "$failed"

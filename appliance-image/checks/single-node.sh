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

# ownership survives a rootless build (files come out of a user namespace)
step ownership bash -c 'stat -c "%n %U:%G %a" /etc/shadow /opt/replstor/cluster/cluster.jar /usr/local/bin/repld /root
  [ "$(stat -c %U:%G /etc/shadow)" = root:shadow ] && [ "$(stat -c %U /opt/replstor/cluster/cluster.jar)" = root ] && [ "$(stat -c %a /root)" = 700 ]'
step root-locked bash -c '[ "$(getent shadow root | cut -d: -f2)" = "!" ]'
step repld-active test "$(systemctl is-active repld)" = active || systemctl status repld --no-pager -l | tail -n 20
step replctl-version bash -c 'out=$(replctl --version) || exit 1; echo "$out"; grep -qF -- "$1" <<<"$out"' _ "$version"
step replctl-status replctl status
step nbd-list nbd-client -l 127.0.0.1 10809

# the kernel NBD client on the node's own demo export, and a filesystem on it
mnt=/mnt/check
mkdir -p "$mnt"
data() {
  step modprobe-nbd modprobe nbd || return
  step nbd-connect nbd-client 127.0.0.1 10809 /dev/nbd0 -N demo || return
  step nbd-size bash -c 'echo "/dev/nbd0: $(blockdev --getsize64 /dev/nbd0) bytes"; [ "$(blockdev --getsize64 /dev/nbd0)" -eq $((1 << 30)) ]'
  step mkfs mkfs.ext4 -q -F /dev/nbd0 || return
  step mount mount /dev/nbd0 "$mnt" || return
  step write bash -c "head -c 8M /dev/urandom > $mnt/data.bin && echo hello-replstor > $mnt/hello.txt && sha256sum $mnt/data.bin > /run/data.sha256 && sync"
  step umount umount "$mnt" || return
  step e2fsck e2fsck -fn /dev/nbd0
  step read-back bash -c "mount -o ro /dev/nbd0 $mnt && sha256sum -c /run/data.sha256 && grep -q hello-replstor $mnt/hello.txt; rc=\$?; umount $mnt; exit \$rc"
  step nbd-disconnect nbd-client -d /dev/nbd0
}
data || { echo "data path stopped at the first failure"; mountpoint -q "$mnt" && umount "$mnt"; nbd-client -d /dev/nbd0 >/dev/null 2>&1; }

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
clean_stop() {
  systemctl stop repld
  systemctl show repld -p Result -p ExecMainCode -p ExecMainStatus -p ActiveState
  [ "$(systemctl show repld -p Result --value)" = success ] && [ "$(systemctl show repld -p ExecMainStatus --value)" = 0 ]
}
step clean-stop clean_stop

if [ "$failed" != 0 ]; then
  echo "--- repld journal (last 40 lines)"
  journalctl -u repld --no-pager -n 40
fi
echo "failed steps: $failed"
exit "$failed"

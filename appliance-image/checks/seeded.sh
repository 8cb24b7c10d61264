#!/bin/bash
# Seeded boot check: the node was booted with the test seed that `boot-test.sh --seeded` makes
# (values below must match it). boot-test.sh puts SSH_TEST_KEY (a private key whose public half
# is in the seed) in front of this script. Exit status: number of failed steps.
set -u
failed=0
step() {
  local name=$1 rc=0
  shift
  echo "--- $name: $*"
  timeout 120 "$@" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then echo "ok   $name"; else echo "FAIL $name (rc=$rc)"; failed=$((failed + 1)); fi
  return "$rc"
}
HOST=seedtest MAC=52:54:00:00:77:0b ADDR=192.168.77.11/24 DNS=10.0.2.3 EXPORT=vol0
HASH='$6$replstorseedtest$6AAcUJQM77Cxd1eTPSX.O09cakLBOSo2hoM3TuPEtxqci4Pv1TX7IiYKrWxIVE8Sbgu8SSbMPXxw7qkFQKpA01'

echo "ready: uptime=$(cut -d' ' -f1 /proc/uptime)s $(systemctl show repld -p ActiveEnterTimestampMonotonic)"
journalctl -u replstor-seed -u replstor-growroot --no-pager -o cat | grep -v '^$'
step seed-unit test "$(systemctl is-active replstor-seed)" = active
step hostname test "$(hostname)" = "$HOST"
step hosts grep -q "^127.0.1.1[[:space:]]*$HOST\$" /etc/hosts
step static-address bash -c "ip -br addr; ip -o link | grep -qi '$MAC' && ip -br addr show \$(ip -o link | grep -i '$MAC' | cut -d: -f2 | tr -d ' ') | grep -qF '$ADDR'"
step dns grep -q "^nameserver $DNS\$" /etc/resolv.conf
step cluster-file grep -q "name = \"$EXPORT\"" /etc/replstor/replstor.toml
step repld-active test "$(systemctl is-active repld)" = active
step export-listed bash -c "nbd-client -l 127.0.0.1 10809 | tee /dev/stderr | grep -qw $EXPORT"
step root-hash test "$(getent shadow root | cut -d: -f2)" = "$HASH"
step sshd-active test "$(systemctl is-active ssh)" = active
if [ -n "${SSH_TEST_KEY:-}" ]; then
  install -m 0600 /dev/null /run/test-key && printf '%s\n' "$SSH_TEST_KEY" > /run/test-key
  step ssh-login ssh -i /run/test-key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o BatchMode=yes root@127.0.0.1 'echo logged in as $(id -un) on $(hostname)'
fi
step growroot bash -c 'df -h /; [ "$(df --output=size -B1M / | tail -n 1)" -gt 3500 ]'
echo "failed steps: $failed"
exit "$failed"

#!/bin/bash
# Two-node boot check: runs on both VMs of `boot-test-two-node.sh` (nodes alpha and beta of one
# cluster file, resource r0), each doing its half. The two halves keep in step over a serial
# link between the VMs (/dev/ttyS2 on both, a qemu socket chardev), independent of the cluster
# network: one line per message.
#
#   alpha                                           beta
#   both Connected (r0 Inconsistent/Inconsistent)   both Connected
#   new-current-uuid --clear-bitmap (skip sync)
#   attach -> /dev/nbd0 (auto-promote), Primary     -> PRIMARY
#   mkfs.ext4, mount, write data1 + sha256          attach refused: the Primary is alpha
#   detach refused while mounted                    <- REFUSED
#   umount, e2fsck -fn, detach (auto-demote)        -> WRITTEN sha1
#                                                   wait alpha Secondary, UpToDate/UpToDate
#                                                   attach -> /dev/nbd0 (auto-promote)
#                                                   mount, data1 has sha1, write data2
#                                                   umount, e2fsck -fn, detach (auto-demote)
#   <- DONE sha2
#   attach again, data1 and data2 intact, detach
#   final state: Connected, UpToDate/UpToDate       -> FINISHED
#                                                   final state
#   (powers off)                                    <- BYE
#
# A failing step that the rest depends on sends ABORT, so the peer stops waiting. Output: one
# line per step with the seconds since the check started; at the end the replctl events seen
# and repld's journal (attach/role lines, warnings and errors). Exit status: failed steps.
set -u
RES=r0
MNT=/mnt/$RES
LINK=/dev/ttyS2
me=$(cat /etc/replstor/node 2>/dev/null || true)
case $me in
  alpha) peer=beta ;;
  beta) peer=alpha ;;
  *) echo "two-node check: /etc/replstor/node is '$me', expected alpha or beta (was the seed applied?)"; exit 1 ;;
esac
failed=0
t0=$SECONDS
ts() { printf '%4ds' $((SECONDS - t0)); }
step() {   # step NAME COMMAND...: runs COMMAND (bounded), reports ok/FAIL with its output
  local name=$1 rc=0
  shift
  echo "--- [$(ts)] $name: $*"
  if [ "$(type -t "$1")" = function ]; then "$@" 2>&1 || rc=$?; else timeout 180 "$@" 2>&1 || rc=$?; fi
  if [ "$rc" = 0 ]; then echo "ok   [$(ts)] $name"; else echo "FAIL [$(ts)] $name (rc=$rc)"; failed=$((failed + 1)); fi
  return "$rc"
}

# ---- the serial link to the peer
buf=
msg=
send() { printf '%s\n' "$*" >&3; echo "     [$(ts)] link -> $*"; }
recv() {   # recv SECONDS: one line into $msg (partial lines are kept for the next call)
  local part=
  if IFS= read -r -t "$1" part <&3; then
    msg=$buf$part; buf=; msg=${msg%$'\r'}; return 0
  fi
  buf=$buf$part
  return 1
}
link_open() {
  stty -F "$LINK" 115200 raw -echo -echoe -echok -ixon -ixoff -crtscts clocal || return 1
  exec 3<>"$LINK"
}
link_hello() {   # both sides say HELLO until they hear each other
  local deadline=$((SECONDS + 300))
  while [ $SECONDS -lt $deadline ]; do
    printf 'HELLO %s\n' "$me" >&3
    if recv 1 && [ "$msg" = "HELLO $peer" ]; then
      printf 'HELLO %s\n' "$me" >&3
      echo "     [$(ts)] link: $peer is there"
      return 0
    fi
  done
  echo "no HELLO from $peer on $LINK within 300 s"
  return 1
}
await() {   # await WORD [SECONDS]: the next message starting with WORD (into $msg); ABORT ends it
  local word=$1 deadline=$((SECONDS + ${2:-400}))
  while [ $SECONDS -lt $deadline ]; do
    recv 2 || continue
    case $msg in
      "$word"|"$word "*) echo "     [$(ts)] link <- $msg"; return 0 ;;
      ABORT*) echo "     [$(ts)] link <- $msg"; return 2 ;;
      HELLO*) ;;
      *) echo "     [$(ts)] link <- (ignored) $msg" ;;
    esac
  done
  echo "no $word from $peer within ${2:-400} s"
  return 1
}
abort() {   # abort STEP: tell the peer, show why, stop
  send "ABORT $me: $1 failed"
  finish
}

# ---- state: waits read the node's event stream (one `replctl events` for the whole check), so
# they cost no JVM start; `replctl status` is called where the device must be seen
EVENTS=/run/two-node-events.log
st() { replctl status "$RES" 2>&1; }
state() {   # the node's current state from the events seen so far, in the form of `replctl status`
  awk -v res="$RES" '
    ($1 == "exists" || $1 == "change" || $1 == "create") && NF > 2 {
      obj = $2; peer = ""
      for (i = 3; i <= NF; i++) { k = $i; sub(/:.*/, "", k); if (k == "peer") { peer = substr($i, 6) } }
      if (peer != "" && !(peer in seen)) { seen[peer] = 1; peers[++n] = peer }
      for (i = 3; i <= NF; i++) { k = $i; sub(/:.*/, "", k); v = substr($i, length(k) + 2); val[obj, peer, k] = v }
    }
    END {
      printf "%s role:%s\n  disk:%s\n", res, val["resource", "", "role"], val["resource", "", "disk"]
      for (j = 1; j <= n; j++) {
        p = peers[j]; oos = val["peer-device", p, "out-of-sync-bytes"] + 0
        printf "  %s role:%s connection:%s\n", p, val["connection", p, "peer-role"], val["connection", p, "connection"]
        printf "    replication:%s peer-disk:%s%s\n", val["peer-device", p, "replication"], val["peer-device", p, "peer-disk"], (oos > 0 ? " out-of-sync:" oos : "")
      }
    }' "$EVENTS"
}
wait_state() {   # wait_state SECONDS PATTERN...: until the state matches every (grep -E) pattern
  local deadline=$((SECONDS + $1)) out p ok
  shift
  while :; do
    out=$(state)
    ok=yes
    for p in "$@"; do grep -qE -- "$p" <<<"$out" || { ok=no; break; }; done
    if [ $ok = yes ]; then echo "$out"; return 0; fi
    if [ $SECONDS -ge $deadline ]; then echo "$out"; echo "(not matched within the time: $p)"; return 1; fi
    sleep 0.5
  done
}
check_status() {   # check_status PATTERN...: `replctl status r0` matches every pattern now
  local out p
  out=$(st)
  echo "$out"
  for p in "$@"; do grep -qE -- "$p" <<<"$out" || { echo "(not matched: $p)"; return 1; }; done
}
dev=
attach() {   # replctl attach r0 prints the device
  dev=$(replctl attach "$RES") || return 1
  echo "replctl attach $RES: $dev"
  [ "$dev" = /dev/nbd0 ] && [ -b "$dev" ] && [ "$(blockdev --getsize64 "$dev")" -eq $((256 << 20)) ] \
    && echo "$dev: $(blockdev --getsize64 "$dev") bytes"
}
detach() { replctl detach "$RES"; }
attached_primary() { wait_state 30 "^$RES role:Primary" "disk:UpToDate" && check_status "^$RES role:Primary" "disk:UpToDate device:/dev/nbd0"; }
demoted() { wait_state 60 "^$RES role:Secondary" "disk:UpToDate"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

finish() {
  mountpoint -q "$MNT" && umount "$MNT"
  if [ -n "${events_pid:-}" ]; then kill "$events_pid" 2>/dev/null; wait "$events_pid" 2>/dev/null; fi
  echo "--- replctl events on $me"
  cat "$EVENTS" 2>/dev/null
  echo "--- repld journal on $me (attach, roles, warnings, errors)"
  journalctl -u repld --no-pager -o short-monotonic \
    | grep -E 'NbdAttach|Primary|Secondary|promot|demot|Connected|sync|WARN|ERROR|Exception|refused' | tail -n 60
  if [ "$failed" != 0 ]; then
    echo "--- replctl status on $me"
    st
    echo "--- repld journal on $me (last 80 lines)"
    journalctl -u repld --no-pager -o short-monotonic -n 80
    echo "--- kernel (nbd)"
    dmesg | grep -i nbd | tail -n 20
  fi
  echo "failed steps on $me: $failed (check took $((SECONDS - t0)) s)"
  exit "$failed"
}

echo "two-node check on $me (peer $peer): uptime=$(cut -d' ' -f1 /proc/uptime)s" \
     "$(systemctl show repld -p ActiveEnterTimestampMonotonic) repld=$(systemctl is-active repld)"
echo "release: $(tr '\n' ' ' < /etc/replstor/release)"
echo "repld start (first boot: the new backing file with fresh metadata, then the daemon):"
journalctl -u repld -o short-monotonic --no-pager | grep -E 'Starting|new backing file|ready:|Started' | head -n 8
mkdir -p "$MNT"
replctl events > "$EVENTS" 2>&1 &
events_pid=$!

step link-open link_open || abort link-open
step link-hello link_hello || abort link-hello
step connected wait_state 300 "connection:Connected" || abort connected

if [ "$me" = alpha ]; then
  step skip-initial-sync replctl new-current-uuid "$RES" --clear-bitmap || abort skip-initial-sync
  step up-to-date wait_state 60 "disk:UpToDate" "peer-disk:UpToDate" || abort up-to-date
  step attach attach || abort attach
  step primary-with-device attached_primary || abort primary-with-device
  send PRIMARY
  step mkfs mkfs.ext4 -q -F "$dev" || abort mkfs
  step mount mount "$dev" "$MNT" || abort mount
  step write bash -c "head -c 16M /dev/urandom > $MNT/data1.bin && echo 'written on alpha' > $MNT/hello.txt && sync"
  sha1=$(sha "$MNT/data1.bin")
  echo "     data1.bin sha256 $sha1"
  refused_detach() {
    local out rc=0
    out=$(replctl detach "$RES" 2>&1) || rc=$?
    echo "$out (exit $rc)"
    [ $rc = 1 ] && grep -q "is mounted on $MNT" <<<"$out"
  }
  step detach-refused-while-mounted refused_detach
  step umount umount "$MNT" || abort umount
  step e2fsck e2fsck -fn "$dev"
  step peer-refused await REFUSED || abort peer-refused
  step detach detach || abort detach
  step auto-demoted demoted || abort auto-demoted
  send "WRITTEN $sha1"
  step peer-done await DONE 400 || abort peer-done
  sha2=${msg#DONE }
  step beta-secondary wait_state 60 "$peer role:Secondary connection:Connected" "disk:UpToDate" "peer-disk:UpToDate"
  step attach-again attach || abort attach-again
  step mount-again mount "$dev" "$MNT" || abort mount-again
  step read-both bash -c "[ \"\$(sha256sum < $MNT/data1.bin | cut -d' ' -f1)\" = '$sha1' ] \
    && [ \"\$(sha256sum < $MNT/data2.bin | cut -d' ' -f1)\" = '$sha2' ] && cat $MNT/hello.txt $MNT/hello2.txt"
  step umount-again umount "$MNT"
  step e2fsck-again e2fsck -fn "$dev"
  step detach-again detach
  step demoted-again demoted
  step in-sync wait_state 60 "^$RES role:Secondary" "disk:UpToDate" "$peer role:Secondary connection:Connected" \
    "replication:Established peer-disk:UpToDate\$"
  step status check_status "^$RES role:Secondary" "disk:UpToDate\$" "$peer role:Secondary connection:Connected" \
    "replication:Established peer-disk:UpToDate\$"
  send "FINISHED $me failed=$failed"
  step peer-bye await BYE 180   # beta checks the connection to alpha before alpha powers off
else
  step peer-primary await PRIMARY 400 || abort peer-primary
  refused_attach() {
    local out rc=0
    out=$(replctl attach "$RES" 2>&1) || rc=$?
    echo "$out (exit $rc)"
    [ $rc = 1 ] && grep -q "Primary is $peer" <<<"$out" && wait_state 10 "^$RES role:Secondary" "disk:UpToDate"
  }
  step attach-refused refused_attach
  send REFUSED
  step peer-written await WRITTEN 400 || abort peer-written
  sha1=${msg#WRITTEN }
  step peer-secondary wait_state 60 "$peer role:Secondary connection:Connected" "disk:UpToDate" \
    "peer-disk:UpToDate" || abort peer-secondary
  step attach attach || abort attach
  step primary-with-device attached_primary || abort primary-with-device
  step mount mount "$dev" "$MNT" || abort mount
  step read-data1 bash -c "sum=\$(sha256sum < $MNT/data1.bin | cut -d' ' -f1); echo \"data1.bin sha256 \$sum\";
    [ \"\$sum\" = '$sha1' ] && cat $MNT/hello.txt"
  step write bash -c "head -c 16M /dev/urandom > $MNT/data2.bin && echo 'written on beta' > $MNT/hello2.txt && sync"
  sha2=$(sha "$MNT/data2.bin")
  echo "     data2.bin sha256 $sha2"
  step umount umount "$MNT" || abort umount
  step e2fsck e2fsck -fn "$dev"
  step detach detach || abort detach
  step auto-demoted demoted || abort auto-demoted
  send "DONE $sha2"
  step peer-finished await FINISHED 400
  step in-sync wait_state 60 "^$RES role:Secondary" "disk:UpToDate" "$peer role:Secondary connection:Connected" \
    "replication:Established peer-disk:UpToDate\$"
  step status check_status "^$RES role:Secondary" "disk:UpToDate\$" "$peer role:Secondary connection:Connected" \
    "replication:Established peer-disk:UpToDate\$"
  send "BYE $me failed=$failed"
fi
finish

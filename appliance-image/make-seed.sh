#!/bin/bash
# Makes a seed for the appliance: a tar archive to attach as qemu fw_cfg opt/replstor/seed
#   qemu-system-x86_64 ... -fw_cfg name=opt/replstor/seed,file=SEED.tar
# (format: appliance-image/README.md, "Seed").
#
# usage: appliance-image/make-seed.sh SEED.tar [options]
#   --hostname NAME             host name
#   --config FILE               configuration, installed as /etc/replstor/replstor.toml: plain
#                               exports, or with --node a cluster file
#   --node NAME                 run as node NAME of the cluster file (repld --config --node NAME)
#   --nic LABEL,MAC,ADDR/PREFIX[,GATEWAY]
#                               static address for the NIC with that MAC (repeatable)
#   --dns ADDR[,ADDR]           nameservers
#   --ssh-key FILE              authorized_keys for root (sshd starts only with a key)
#   --password-hash HASH        root password as a crypt(3) hash (e.g. `openssl passwd -6`)
set -euo pipefail
die() { printf 'make-seed.sh: error: %s\n' "$*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: $0 SEED.tar [--hostname NAME] [--config FILE] [--node NAME] [--nic LABEL,MAC,ADDR/PREFIX[,GW]] [--dns ADDR] [--ssh-key FILE] [--password-hash HASH]"
out=$1
shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
conf=$dir/seed.conf
echo "# replstor seed, made by make-seed.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$conf"
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "$1 needs a value"
  case $1 in
    --hostname) echo "hostname=$2" >> "$conf" ;;
    --config) cp "$2" "$dir/replstor.toml" ;;
    --node) echo "node=$2" >> "$conf" ;;
    --nic)
      IFS=, read -r label mac addr gw <<<"$2"
      [ -n "$label" ] && [ -n "$mac" ] && [ -n "$addr" ] || die "--nic wants LABEL,MAC,ADDR/PREFIX[,GATEWAY]"
      printf 'nic.%s.mac=%s\nnic.%s.address=%s\n' "$label" "$mac" "$label" "$addr" >> "$conf"
      [ -z "$gw" ] || printf 'nic.%s.gateway=%s\n' "$label" "$gw" >> "$conf" ;;
    --dns) echo "dns=$2" >> "$conf" ;;
    --ssh-key) cp "$2" "$dir/authorized_keys" ;;
    --password-hash) echo "root_password_hash=$2" >> "$conf" ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done
members=(seed.conf)
[ -f "$dir/replstor.toml" ] && members+=(replstor.toml)
[ -f "$dir/authorized_keys" ] && members+=(authorized_keys)
tar -C "$dir" --owner=0 --group=0 --numeric-owner --mode=u=rw,go=r -cf "$out" "${members[@]}"
echo "$out: ${members[*]}"

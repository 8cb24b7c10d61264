#!/usr/bin/env bash
# Builds replstor and runs the whole test suite: unit tests, the NBD fuzz test, and the system tests
# that drive real clients (qemu-io, qemu-img, nbdinfo, nbdcopy, fio, nbd-client, nbdfuse + ext4)
# against bin/repld. Installs the Debian packages the tests need when they are missing.
set -euo pipefail
root=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
cd "$root"

# command -> Debian package
declare -A need=(
  [java]=openjdk-17-jdk-headless [mvn]=maven
  [qemu-io]=qemu-utils [qemu-img]=qemu-utils [nbdkit]=nbdkit [nbdinfo]=libnbd-bin [nbdcopy]=libnbd-bin
  [nbdfuse]=libnbd-bin [fio]=fio [nbd-client]=nbd-client [nbd-server]=nbd-server [qemu-nbd]=qemu-utils
  [losetup]=mount [mkfs.ext4]=e2fsprogs [e2fsck]=e2fsprogs [fusermount3]=fuse3 [ip]=iproute2
  [openssl]=openssl [certtool]=gnutls-bin [python3]=python3
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
python3 -c 'import nbd' 2>/dev/null || missing+=(python3-libnbd)
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" -ne 0 ]; then
    echo "run-tests: missing Debian packages: $pkgs; install them as root (apt-get install $pkgs)" >&2
    exit 1
  fi
  echo "run-tests: installing $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

mvn -B -ntp verify "$@"

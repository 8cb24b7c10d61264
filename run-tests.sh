#!/usr/bin/env bash
# Builds replstor and runs the whole test suite: unit tests, the NBD fuzz test, the system tests
# that drive real clients (qemu-io, qemu-img, nbdinfo, nbdcopy, fio, nbd-client, nbdfuse + ext4)
# against bin/repld, then builds the appliance image and boot-tests it under qemu.
# Installs the Debian packages the tests need when they are missing.
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
  [mmdebstrap]=mmdebstrap [newuidmap]=uidmap [sfdisk]=fdisk [grub-mkimage]=grub-common
  [qemu-system-x86_64]=qemu-system-x86 [ssh]=openssh-client [zstd]=zstd
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
/usr/bin/python3 -c 'import nbd' 2>/dev/null || missing+=(python3-libnbd)
[ -f /usr/lib/grub/i386-pc/boot.img ] || missing+=(grub-pc-bin)
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

echo "== appliance image: build (appliance-image/out) and boot tests under qemu"
appliance-image/build.sh --skip-mvn appliance-image/out
boot_passed=0
appliance-image/boot-test.sh appliance-image/out && boot_passed=$((boot_passed + 1))
appliance-image/boot-test.sh --seeded appliance-image/out && boot_passed=$((boot_passed + 1))
appliance-image/boot-test-two-node.sh appliance-image/out && boot_passed=$((boot_passed + 1))
boot_tests=3

# One closing line over everything that ran: Maven's reports plus the boot tests.
python3 - "$boot_passed" "$boot_tests" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
tests = failed = skipped = 0
for f in glob.glob('*/target/surefire-reports/TEST-*.xml'):
    r = ET.parse(f).getroot()
    tests += int(r.get('tests')); skipped += int(r.get('skipped'))
    failed += int(r.get('failures')) + int(r.get('errors'))
boot, boot_tests = int(sys.argv[1]), int(sys.argv[2])
passed = tests - failed - skipped + boot
failed += boot_tests - boot
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY

#!/bin/bash
# Builds the replstor appliance: OUTDIR/replstor.raw (MBR + GRUB + ext4 root, boots with plain
# `qemu-system-x86_64 -m 2048 -drive file=replstor.raw,format=raw`) and OUTDIR/replstor.qcow2.
#
# usage: appliance-image/build.sh [--skip-mvn] [--refresh-base] [--base-only] OUTDIR
#   --skip-mvn      use the jars already in cluster/target and replctl/target
#   --refresh-base  rebuild the cached Debian base tarball even if it is fresh
#   --base-only     only make sure the cached base tarball exists (no jars needed)
#
# Works as root and as an ordinary user (with /etc/subuid and /etc/subgid ranges): no loop
# devices, no mounts on the host (only inside private namespaces). Stages:
#   1. base    mmdebstrap --mode=unshare: Debian bookworm + kernel + JRE + tools, as a tarball,
#              cached in $REPLSTOR_APPLIANCE_CACHE (default ~/.cache/replstor-appliance), keyed
#              by mmdebstrap/* (package list and hooks) and the mirror; rebuilt after
#              $REPLSTOR_BASE_MAX_AGE_DAYS days (default 7) to pick up security updates.
#   2. overlay overlay/ + the replstor jars + /etc/replstor/release, packed as a root-owned tar.
#   3. disk    both tarballs unpacked into a directory (in a user namespace when not root),
#              make-cds run in it (AppCDS archives for repld and replctl), mkfs.ext4 -d writes
#              it into the partition of a sparse raw file, sfdisk writes the MBR, grub-mkimage +
#              dd install GRUB.
#   4. qcow2   qemu-img convert -c, zstd compression.
# Environment: REPLSTOR_MIRROR (default http://deb.debian.org/debian),
#   REPLSTOR_SECURITY_MIRROR (default http://deb.debian.org/debian-security),
#   REPLSTOR_IMAGE_SIZE (default 3G: apparent size of the raw image; it is sparse).
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SUITE=bookworm
MIRROR=${REPLSTOR_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${REPLSTOR_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
IMAGE_SIZE=${REPLSTOR_IMAGE_SIZE:-3G}
CACHE=${REPLSTOR_APPLIANCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/replstor-appliance}
MAX_AGE_DAYS=${REPLSTOR_BASE_MAX_AGE_DAYS:-7}
ROOT_LABEL=replstor-root
PART_START_SECTOR=2048            # 1 MiB: room for GRUB's core.img behind the MBR

log() { printf '%s build: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

skip_mvn=no
refresh_base=no
base_only=no
while [ $# -gt 0 ]; do
  case $1 in
    --skip-mvn) skip_mvn=yes ;;
    --refresh-base) refresh_base=yes ;;
    --base-only) base_only=yes; skip_mvn=yes ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
  shift
done
[ $# -eq 1 ] || die "usage: $0 [--skip-mvn] [--refresh-base] [--base-only] OUTDIR"

# ---- host tools -------------------------------------------------------------------------
check_tools() {
  local missing=() t
  # tool:Debian package
  local tools="mmdebstrap:mmdebstrap unshare:util-linux mkfs.ext4:e2fsprogs sfdisk:fdisk
               grub-mkimage:grub-common qemu-img:qemu-utils tar:tar sha256sum:coreutils"
  # mmdebstrap --mode=unshare as an ordinary user maps the sub-uid range with newuidmap
  [ "$(id -u)" = 0 ] || tools="$tools newuidmap:uidmap newgidmap:uidmap"
  for t in $tools; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
  done
  # GRUB's BIOS boot sector and core image modules
  [ -f /usr/lib/grub/i386-pc/boot.img ] && [ -f /usr/lib/grub/i386-pc/biosdisk.mod ] || missing+=(grub-pc-bin)
  if [ "$skip_mvn" = no ] && ! command -v mvn >/dev/null 2>&1; then
    missing+=(maven)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    die "missing host packages: ${missing[*]} (install with: apt-get install ${missing[*]})"
  fi
  if [ "$(id -u)" != 0 ]; then
    grep -q "^$(id -un):" /etc/subuid && grep -q "^$(id -un):" /etc/subgid \
      || die "user $(id -un) has no range in /etc/subuid and /etc/subgid (needed for mmdebstrap --mode=unshare); e.g. usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $(id -un)"
  fi
}
PATH=$PATH:/usr/sbin:/sbin
check_tools
mkdir -p "$1"
OUT=$(cd "$1" && pwd)

t_start=$SECONDS
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
# As root, inside a user namespace when we are not root (extracted files belong to sub-uids), and
# with private mount, PID and network namespaces (make-cds runs repld in the image tree).
as_root() {
  if [ "$(id -u)" = 0 ]; then unshare --mount --pid --net --fork "$@"
  else unshare --map-auto --map-root-user --mount --pid --net --fork "$@"; fi
}
cleanup() { [ -d "$WORK" ] && as_root rm -rf "$WORK"; }
trap cleanup EXIT

# ---- version and jars ---------------------------------------------------------------------
VERSION=$(sed -n 's:.*<version>\(.*\)</version>.*:\1:p' "$ROOT/pom.xml" | head -n 1)
[ -n "$VERSION" ] || die "no <version> in $ROOT/pom.xml"
COMMIT=$(git -C "$ROOT" -c safe.directory='*' rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
DIRTY=unknown
if [ "$COMMIT" != unknown ]; then
  if [ -z "$(git -C "$ROOT" -c safe.directory='*' status --porcelain --untracked-files=no 2>/dev/null)" ]; then DIRTY=no; else DIRTY=yes; fi
fi

if [ "$skip_mvn" = no ]; then
  log "mvn package (cluster, replctl)"
  (cd "$ROOT" && mvn -B -q -o -DskipTests -pl cluster,replctl -am package) \
    || die "mvn package failed; fix the build or pass --skip-mvn to use the jars in */target"
fi
for m in cluster replctl; do
  [ "$base_only" = yes ] && break
  [ -f "$ROOT/$m/target/$m.jar" ] && [ -d "$ROOT/$m/target/lib" ] \
    || die "$ROOT/$m/target/$m.jar or $m/target/lib/ missing: run 'mvn -o -DskipTests package' in $ROOT first"
done
t_mvn=$SECONDS

# ---- stage 1: base tarball (cached) -------------------------------------------------------
packages=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$HERE/mmdebstrap/packages" | paste -sd, -)
sources=("deb $MIRROR $SUITE main"
         "deb $MIRROR $SUITE-updates main"
         "deb $SECURITY_MIRROR $SUITE-security main")
key=$( { echo "format 1 $SUITE"; printf '%s\n' "${sources[@]}"; cat "$HERE"/mmdebstrap/*; } | sha256sum | cut -c1-16)
mkdir -p "$CACHE"
BASE=$CACHE/base-$SUITE-$key.tar
if [ -f "$BASE" ] && [ "$refresh_base" = no ] \
   && [ -n "$(find "$BASE" -mtime -"$MAX_AGE_DAYS" -print)" ]; then
  log "base: cached $BASE"
  base_state=cached
else
  log "base: mmdebstrap $SUITE (packages: $packages)"
  tmp=$CACHE/.base-$key.$$.tar
  mmdebstrap --mode=unshare --variant=minbase --format=tar --verbose \
    --include="$packages" \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --setup-hook="$HERE/mmdebstrap/setup-hook.sh" \
    --essential-hook="$HERE/mmdebstrap/essential-hook.sh" \
    --customize-hook="$HERE/mmdebstrap/customize-hook.sh" \
    "$SUITE" "$tmp" "${sources[@]}" 2>"$OUT/mmdebstrap.log" \
    || { rm -f "$tmp"; tail -n 40 "$OUT/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $OUT/mmdebstrap.log)"; }
  mv -f "$tmp" "$BASE"
  # keep only the newest other base next to this one
  ls -t "$CACHE"/base-*.tar 2>/dev/null | tail -n +3 | xargs -r rm -f
  base_state=built
fi
t_base=$SECONDS
if [ "$base_only" = yes ]; then
  log "base ready in $((t_base - t_start)) s: $BASE"
  exit 0
fi

# ---- stage 2: overlay tarball -------------------------------------------------------------
log "overlay: replstor $VERSION ($COMMIT)"
S=$WORK/overlay
mkdir -p "$S"
cp -a "$HERE/overlay/." "$S/"
for m in cluster replctl; do
  mkdir -p "$S/opt/replstor/$m/lib"
  cp "$ROOT/$m/target/$m.jar" "$S/opt/replstor/$m/"
  cp "$ROOT/$m/target/lib/"*.jar "$S/opt/replstor/$m/lib/" 2>/dev/null || true
done
cat > "$S/etc/replstor/release" <<EOF
version=$VERSION
commit=$COMMIT
dirty=$DIRTY
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
base=$SUITE-$key
EOF
# the single-node default, also kept for a seed that brings no cluster file
mkdir -p "$S/usr/share/replstor"
cp "$S/etc/replstor/replstor.toml" "$S/usr/share/replstor/replstor.toml.default"
cp "$S/etc/replstor/node" "$S/usr/share/replstor/node.default"
# systemctl enable, done as the symlinks it would make
wants() { mkdir -p "$S/etc/systemd/system/$1.wants"; ln -sf "../$2" "$S/etc/systemd/system/$1.wants/$2"; }
wants multi-user.target repld.service
wants multi-user.target replstor-check.service
wants sysinit.target replstor-seed.service
wants sysinit.target replstor-growroot.service
find "$S" -type d -exec chmod 0755 {} +
chmod -R go-w "$S"
tar -C "$S" --owner=0 --group=0 --numeric-owner --sort=name -cf "$WORK/overlay.tar" .

# ---- stage 3: disk ------------------------------------------------------------------------
log "disk: $IMAGE_SIZE raw image"
RAW=$OUT/replstor.raw
rm -f "$RAW" "$OUT/replstor.qcow2"
truncate -s "$IMAGE_SIZE" "$RAW"
disk_bytes=$(stat -c %s "$RAW")
part_sectors=$(( disk_bytes / 512 - PART_START_SECTOR ))
printf 'label: dos\nstart=%d, size=%d, type=83, bootable\n' "$PART_START_SECTOR" "$part_sectors" \
  | sfdisk --quiet --no-reread --no-tell-kernel "$RAW" >/dev/null
as_root sh -eu -c '
  work=$1 base=$2 raw=$3 label=$4 offset=$5 fs_kib=$6
  R=$work/root
  mkdir "$R"
  # no ./dev/*: mknod is not allowed in a user namespace, and systemd mounts devtmpfs anyway
  tar -C "$R" -xpf "$base" --numeric-owner --xattrs --xattrs-include="*" --exclude="./dev/*"
  tar -C "$R" -xpf "$work/overlay.tar" --numeric-owner --keep-directory-symlink --no-overwrite-dir
  # AppCDS archives for repld and replctl, made by the image'"'"'s own JVM (see make-cds)
  mount -t proc proc "$R/proc"
  mount -t tmpfs tmpfs "$R/tmp"
  mount -t tmpfs tmpfs "$R/run"
  for d in null zero random urandom; do
    touch "$R/dev/$d"
    mount --bind "/dev/$d" "$R/dev/$d"
  done
  chroot "$R" ip link set lo up
  rc=0
  chroot "$R" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /usr/lib/replstor/make-cds >&2 || rc=$?
  for d in null zero random urandom; do umount "$R/dev/$d"; rm -f "$R/dev/$d"; done
  umount "$R/run" "$R/tmp" "$R/proc"
  [ "$rc" = 0 ] || { echo "make-cds failed" >&2; exit 1; }
  # refuse to write an image that cannot boot or that has an open root account
  for f in vmlinuz initrd.img boot/grub/grub.cfg usr/bin/java usr/sbin/nbd-client \
           usr/local/bin/repld usr/local/bin/replctl etc/replstor/replstor.toml etc/replstor/node; do
    [ -e "$R/$f" ] || { echo "image check: /$f missing" >&2; exit 1; }
  done
  ls "$R"/lib/modules/*/kernel/drivers/block/nbd.ko >/dev/null || { echo "image check: nbd.ko missing" >&2; exit 1; }
  case $(grep "^root:" "$R/etc/shadow" | cut -d: -f2) in
    "") echo "image check: root has an empty password" >&2; exit 1 ;;
  esac
  du -sm "$R" | cut -f1 > "$work/rootfs-mib"
  mkfs.ext4 -q -F -L "$label" -E offset="$offset" -d "$R" "$raw" "${fs_kib}k"
  rm -rf "$R"
' sh "$WORK" "$BASE" "$RAW" "$ROOT_LABEL" $((PART_START_SECTOR * 512)) $((part_sectors / 2))

# GRUB for BIOS: boot.img in the MBR's code area (first 440 bytes, the partition table stays),
# core.img in the gap from sector 1. grub-mkimage fills in diskboot's block list; the defaults
# (kernel sector 1) match this layout, so grub-bios-setup is not needed.
grub-mkimage -O i386-pc -o "$WORK/core.img" -p "(hd0,msdos1)/boot/grub" \
  biosdisk part_msdos ext2 normal linux
core_sectors=$(( ($(stat -c %s "$WORK/core.img") + 511) / 512 ))
[ "$core_sectors" -lt "$PART_START_SECTOR" ] || die "core.img ($core_sectors sectors) does not fit before the partition"
dd if=/usr/lib/grub/i386-pc/boot.img of="$RAW" bs=440 count=1 conv=notrunc status=none
dd if="$WORK/core.img" of="$RAW" bs=512 seek=1 conv=notrunc status=none
t_disk=$SECONDS

# ---- stage 4: qcow2 -----------------------------------------------------------------------
log "qcow2: zstd"
qemu-img convert -c -O qcow2 -o compression_type=zstd "$RAW" "$OUT/replstor.qcow2"
t_end=$SECONDS

raw_alloc=$(du -m "$RAW" | cut -f1)
qcow_mib=$(du -m --apparent-size "$OUT/replstor.qcow2" | cut -f1)
cat > "$OUT/build-info.txt" <<EOF
version=$VERSION
commit=$COMMIT
base=$BASE ($base_state)
rootfs_mib=$(cat "$WORK/rootfs-mib")
raw_apparent=$IMAGE_SIZE
raw_allocated_mib=$raw_alloc
qcow2_mib=$qcow_mib
seconds_mvn=$((t_mvn - t_start))
seconds_base=$((t_base - t_mvn))
seconds_disk=$((t_disk - t_base))
seconds_qcow2=$((t_end - t_disk))
seconds_total=$((t_end - t_start))
EOF
log "done in $((t_end - t_start)) s (mvn $((t_mvn - t_start)) s, base $((t_base - t_mvn)) s $base_state, disk $((t_disk - t_base)) s, qcow2 $((t_end - t_disk)) s)"
log "$RAW: $IMAGE_SIZE apparent, $raw_alloc MiB allocated; $OUT/replstor.qcow2: $qcow_mib MiB"

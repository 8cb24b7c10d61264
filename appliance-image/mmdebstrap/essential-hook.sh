#!/bin/sh
# mmdebstrap --essential-hook: runs after the Essential packages, before the --include list
# (and so before the kernel and initramfs-tools). $1 = the rootfs.
set -eu
R=$1
# A small initrd, built right the first time the kernel postinst runs:
# only the listed modules (MODULES=list), ...
mkdir -p "$R/etc/initramfs-tools/conf.d" "$R/usr/share/initramfs-tools/modules.d"
cat > "$R/etc/initramfs-tools/conf.d/replstor.conf" <<'CONF'
# replstor appliance: only the modules in /usr/share/initramfs-tools/modules.d/replstor
MODULES=list
CONF
cat > "$R/usr/share/initramfs-tools/modules.d/replstor" <<'MODS'
# Disk controllers a VM boots from, and the root filesystem.
virtio_pci
virtio_blk
virtio_scsi
ata_piix
ata_generic
ahci
sd_mod
nvme
ext4
crc32c_generic
MODS
# ... and without nbd-client's initramfs hooks, which pull every NIC driver and gnutls into the
# initrd (for NBD root, which the appliance does not use). Diverted out of the hooks directory.
mkdir -p "$R/usr/share/initramfs-tools/hooks-disabled"
for h in nbd nbd-client; do
  chroot "$R" dpkg-divert --quiet --local --rename \
    --divert "/usr/share/initramfs-tools/hooks-disabled/$h" \
    --add "/usr/share/initramfs-tools/hooks/$h"
done

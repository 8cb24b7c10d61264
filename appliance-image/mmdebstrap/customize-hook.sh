#!/bin/sh
# mmdebstrap --customize-hook: runs after all packages are installed. $1 = the rootfs.
# Only things that need the package set go here; the replstor files come later (build.sh
# lays overlay/ over the cached base tarball), so changing them does not rerun mmdebstrap.
set -eu
R=$1
KVER=$(ls "$R/lib/modules")
[ "$(echo "$KVER" | wc -w)" = 1 ] || { echo "expected one kernel, found: $KVER" >&2; exit 1; }
M="$R/lib/modules/$KVER/kernel"
[ -f "$M/drivers/block/nbd.ko" ] || { echo "nbd.ko missing from the kernel package" >&2; exit 1; }

# Module trees a VM never needs (~200 MiB). nbd.ko (drivers/block) stays.
for d in drivers/gpu drivers/media drivers/net/wireless drivers/infiniband drivers/staging \
         drivers/iio drivers/bluetooth drivers/isdn drivers/thunderbolt drivers/nfc \
         drivers/mtd drivers/net/can drivers/net/ieee802154 drivers/net/hamradio \
         drivers/atm drivers/fpga drivers/w1 drivers/input/touchscreen drivers/input/joystick \
         drivers/input/tablet drivers/usb/gadget drivers/hid/amd-sfh-hid \
         sound net/mac80211 net/wireless net/bluetooth net/nfc net/can net/ieee802154 \
         net/atm net/ax25 net/rose net/netrom arch/x86/kvm drivers/parport \
         drivers/block/floppy.ko drivers/char/ppdev.ko drivers/input/misc/pcspkr.ko; do
  rm -rf "${M:?}/$d"
done
chroot "$R" depmod "$KVER"

# Services an appliance does not want at boot.
chroot "$R" systemctl mask e2scrub_reap.service e2scrub_all.timer e2scrub_all.service
chroot "$R" systemctl disable apt-daily.timer apt-daily-upgrade.timer fstrim.timer 2>/dev/null || true
chroot "$R" systemctl enable systemd-networkd.service
# no D-Bus in the image (systemd-resolved would pull it in and sits before sysinit.target):
# logind cannot run without it, and nothing here needs it
chroot "$R" systemctl mask systemd-logind.service
# DNS servers come from the seed (dns=); without one the appliance resolves only /etc/hosts
printf '# written by replstor-seed from the seed (dns=); empty without a seed\n' > "$R/etc/resolv.conf"

# Per-instance identity is made on first boot, not baked into every copy of the image.
rm -f "$R"/etc/ssh/ssh_host_*
: > "$R/etc/machine-id"
rm -f "$R/var/lib/systemd/random-seed" "$R/var/lib/dbus/machine-id"

# No usable root password in the image; the seed may set a hash or an SSH key.
chroot "$R" usermod -p '!' root

# Package lists and caches: not needed to run the appliance.
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/debconf/*-old \
       "$R"/var/log/apt/* "$R"/var/log/alternatives.log "$R"/var/log/bootstrap.log

#!/bin/sh
# mmdebstrap --setup-hook: runs on the host before any package is unpacked. $1 = the rootfs.
set -eu
# dpkg path-excludes /usr/share/man/*, but openjdk's postinst registers java.1.gz as an
# update-alternatives slave and fails if the directory does not exist.
mkdir -p "$1/usr/share/man/man1"

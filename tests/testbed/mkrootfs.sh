#!/bin/sh
# mkrootfs.sh IMAGE SIZE: builds IMAGE, a SIZE (mke2fs syntax: 64M) ext4 root disk for L2
# whose /sbin/init is the test agent: the files of the agent's initramfs ($L2_INITRD: static
# busybox and its links, the agent as /init, the /agent scripts) with /sbin a directory
# holding init, and without the modules (the initramfs loads them before switch_root).
# Runs in L1, with mkfs.ext4 from the host's /usr.
set -e
image=$1
size=$2
tree=$(mktemp -d)
(cd "$tree" && cpio -id <"$L2_INITRD" 2>/dev/null)
rm -r "$tree/sbin" "$tree/modules"
mkdir "$tree/sbin"
cp "$tree/init" "$tree/sbin/init"
rm -f "$image"
mkfs.ext4 -q -L l2root -d "$tree" "$image" "$size"
rm -r "$tree"

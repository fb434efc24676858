#!/bin/sh
# mktoolsdisk.sh IMAGE SIZE PROGRAM...: builds IMAGE, a SIZE (mke2fs syntax: 16M) ext4 disk
# holding host programs for L2 to run from a read-only mount: each PROGRAM, every shared library
# the host's dynamic loader lists for it, and the loader itself as `ld.so`, all in the disk's
# top directory. L2 runs one as `/mnt/tools/ld.so --library-path /mnt/tools /mnt/tools/NAME`.
# A disk rather than the initramfs: fio's libraries alone are 80 MB, read only as L2 needs them.
# Runs in L1, with the programs, the loader and mkfs.ext4 from the host's /usr.
set -e
image=$1
size=$2
shift 2
tree=$(mktemp -d)
for program in "$@"; do
  cp "$program" "$tree/"
  /lib64/ld-linux-x86-64.so.2 --list "$program" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p' |
    while read -r lib; do cp "$lib" "$tree/"; done
done
cp /lib64/ld-linux-x86-64.so.2 "$tree/ld.so"
rm -f "$image"
mkfs.ext4 -q -d "$tree" "$image" "$size"
rm -r "$tree"

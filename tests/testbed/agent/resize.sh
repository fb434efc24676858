# A disk resized under a mounted file system (`agent.action=resize`, `agent.resize=vdb`, the
# ext4 disk to grow; `agent.tools=vdc`, a read-only disk holding resize2fs, its libraries and
# the dynamic loader as `ld.so`): mounts both, prints `resize_before=<bytes> <fs KiB>` and
# `resize_ready`, waits up to a minute for the capacity to change (the host resizes the disk),
# then `resize_after=<bytes>`, grows the file system online (`resize2fs=<status>`,
# `resize_fs_kb=`), fills it past its old size (`resize_fill=<MiB written> <status>`) and
# reports the kernel's line about the change (`resize_dmesg=`).
d=$(param resize)
t=$(param tools)
mkdir -p /mnt/data /mnt/tools
mount "/dev/$d" /mnt/data && mount -o ro "/dev/$t" /mnt/tools || {
  echo "resize=no-mount"
  exit
}
fs_kb() { df -k /mnt/data | awk 'NR == 2 { print $2 }'; }
before=$(blockdev --getsize64 "/dev/$d")
echo "resize_before=$before $(fs_kb)"
echo "resize_ready"
i=0
while [ "$(blockdev --getsize64 "/dev/$d")" = "$before" ] && [ $i -lt 300 ]; do
  sleep 0.2
  i=$((i + 1))
done
after=$(blockdev --getsize64 "/dev/$d")
echo "resize_after=$after"
/mnt/tools/ld.so --library-path /mnt/tools /mnt/tools/resize2fs "/dev/$d" >/dev/null 2>&1
echo "resize2fs=$?"
echo "resize_fs_kb=$(fs_kb)"
mib=$((before / 1048576 + 8))
dd if=/dev/zero of=/mnt/data/fill bs=1M count=$mib conv=fsync 2>/dev/null
echo "resize_fill=$mib $?"
echo "resize_dmesg=$(dmesg | grep -m1 "$d: detected capacity change")"
umount /mnt/data /mnt/tools

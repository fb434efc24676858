# A read-only disk (`agent.rodisk=vdb`, the default) holding an ext4 file system with /hello:
# its ro flag, whether a raw write to it works, what a read-write mount gives (rw, ro after a
# fallback, or fail), and /hello read through a read-only mount.
d=$(param rodisk)
d=${d:-vdb}
echo "ro_flag=$(cat "/sys/block/$d/ro")"
if dd if=/dev/zero of="/dev/$d" bs=4096 count=1 conv=fsync 2>/dev/null; then
  echo "ro_write=ok"
else
  echo "ro_write=fail"
fi
if mount -w -t ext4 "/dev/$d" /mnt 2>/dev/null; then
  echo "ro_mount_rw=$(awk '$2 == "/mnt" { split($4, o, ","); print o[1] }' /proc/mounts)"
  umount /mnt
else
  echo "ro_mount_rw=fail"
fi
if mount -r -t ext4 "/dev/$d" /mnt 2>/dev/null; then
  echo "ro_file=$(cat /mnt/hello)"
  umount /mnt
else
  echo "ro_file=mount-failed"
fi

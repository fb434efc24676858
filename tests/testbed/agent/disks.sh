# Every virtio disk, in name order: `disk_<name>=<512-byte sectors> <ro flag> <serial>`.
for b in /sys/block/vd*; do
  [ -e "$b" ] || continue
  echo "disk_${b##*/}=$(cat "$b/size") $(cat "$b/ro") $(cat "$b/serial" 2>/dev/null)"
done

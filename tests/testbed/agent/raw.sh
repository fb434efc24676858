# The raw data path on a scratch disk (`agent.raw=vdc`, the default): `raw_lbs=` (logical
# block size) and `raw_discard_max=`; then 2 MiB from /dev/urandom, the first MiB written
# with O_DIRECT at 1 MiB in 1 MiB requests, the second at 3 MiB in 4 KiB requests, and both
# read back the same way: `raw_sha=<sha256 of the 2 MiB, 16 hex digits>`,
# `raw_read=same|differ`.
d=$(param raw)
d=${d:-vdc}
echo "raw_lbs=$(cat "/sys/block/$d/queue/logical_block_size")"
echo "raw_discard_max=$(cat "/sys/block/$d/queue/discard_max_bytes")"
mount -t tmpfs tmpfs /tmp
head -c 2097152 /dev/urandom >/tmp/raw
dd if=/tmp/raw of="/dev/$d" bs=1M count=1 seek=1 oflag=direct 2>/dev/null
dd if=/tmp/raw of="/dev/$d" bs=4k count=256 skip=256 seek=768 oflag=direct 2>/dev/null
sum=$(sha256sum </tmp/raw | cut -c1-16)
echo "raw_sha=$sum"
back=$({
  dd if="/dev/$d" bs=1M count=1 skip=1 iflag=direct
  dd if="/dev/$d" bs=4k count=256 skip=768 iflag=direct
} 2>/dev/null | sha256sum | cut -c1-16)
[ "$back" = "$sum" ] && echo "raw_read=same" || echo "raw_read=differ"
umount /tmp

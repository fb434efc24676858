# Multiqueue (`agent.mq=vda`, the default): `mq_queues=` (the disk's hardware queues); then four
# writers at once, each writing its own MiB of 4 MiB of random data with O_DIRECT in 64 KiB
# requests, and the 4 MiB read back: `mq_sha=<sha256 of the 4 MiB, 16 hex digits>`,
# `mq_read=same|differ`.
d=$(param mq)
d=${d:-vda}
echo "mq_queues=$(ls "/sys/block/$d/mq" | wc -l)"
mount -t tmpfs tmpfs /tmp
head -c 4194304 /dev/urandom >/tmp/mq
for i in 0 1 2 3; do
  dd if=/tmp/mq of="/dev/$d" bs=64k count=16 skip=$((i * 16)) seek=$((i * 16)) oflag=direct \
    2>/dev/null &
done
wait
sum=$(sha256sum </tmp/mq | cut -c1-16)
echo "mq_sha=$sum"
back=$(dd if="/dev/$d" bs=64k count=64 iflag=direct 2>/dev/null | sha256sum | cut -c1-16)
[ "$back" = "$sum" ] && echo "mq_read=same" || echo "mq_read=differ"
umount /tmp

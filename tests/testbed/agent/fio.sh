# fio with verification at depth (`agent.fio=vda`, the disk to write; `agent.tools=vdb`, a
# read-only disk holding fio, its libraries and the loader, from mktoolsdisk.sh): two jobs,
# each pinned to its own vCPU (so each submits on its vCPU's hardware queue), each writing
# `agent.fio_mib=` MiB (default 16) of its own region in 4 KiB random O_DIRECT writes through
# libaio at depth 32, every block with a crc32c header, then reading it all back and checking
# it. Reports `fio=<status>`, `fio_result=<error> <KiB read> <KiB written>` (fio's terse
# output, over both jobs), and `fio_queue_irqs=<count>…`: the interrupts each of the disk's
# request queues raised during the run.
d=$(param fio)
t=$(param tools)
mib=$(param fio_mib)
mib=${mib:-16}
mkdir -p /mnt/tools
mount -o ro "/dev/$t" /mnt/tools || {
  echo "fio=no-mount"
  exit
}
mount -t tmpfs tmpfs /tmp
virtio=$(basename "$(readlink "/sys/block/$d/device")")
# Interrupts of each of the disk's queues, summed over the CPUs (/proc/interrupts columns).
queue_irqs() {
  awk -v q="$virtio-req." 'index($NF, q) == 1 {
    n = 0
    for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i
    printf "%d ", n
  }' /proc/interrupts
}
before=$(queue_irqs)
/mnt/tools/ld.so --library-path /mnt/tools /mnt/tools/fio --output=/tmp/fio.out \
  --output-format=terse --terse-version=3 --group_reporting --filename="/dev/$d" --direct=1 \
  --ioengine=libaio --iodepth=32 --rw=randwrite --bs=4k --size="${mib}M" --verify=crc32c \
  --verify_fatal=1 --cpus_allowed=0-1 --cpus_allowed_policy=split \
  --name=q0 --offset=0 --name=q1 --offset="${mib}M" >/tmp/fio.err 2>&1
echo "fio=$?"
after=$(queue_irqs)
# Terse version 3: field 5 is the error, 6 the KiB read, 47 the KiB written.
awk -F';' '$1 == 3 { print "fio_result=" $5 " " $6 " " $47 }' /tmp/fio.out
head -c 300 /tmp/fio.err
set -- $before
irqs=
for n in $after; do
  irqs="$irqs $((n - $1))"
  shift
done
echo "fio_queue_irqs=${irqs# }"
umount /tmp /mnt/tools

# A soak (an action): for `agent.seconds=` (default 60) seconds, rounds of virtio-rng and
# virtio-blk work on `agent.soak=` (default vda): 4 KiB from /dev/hwrng, then 1 MiB (those bytes
# and fresh ones) written at the disk's next MiB with O_DIRECT and fsync, read back with
# O_DIRECT and compared. Says `soak_started`, `soak=<seconds> <rounds> <bad>` every 10 s, and
# `soak_done=<rounds> <bad>` at the end (bad: a round whose read-back differed or failed).
d=$(param soak)
d=${d:-vda}
seconds=$(param seconds)
seconds=${seconds:-60}
mib=$(($(cat "/sys/block/$d/size") / 2048))
seconds_up() { cut -d. -f1 /proc/uptime; }
echo "soak_started"
start=$(seconds_up)
n=0 bad=0 said=0
while elapsed=$(($(seconds_up) - start)) && [ $elapsed -lt "$seconds" ]; do
  if head -c 4096 /dev/hwrng >/tmp/soak-seed &&
    cat /tmp/soak-seed /dev/urandom | head -c 1048576 >/tmp/soak-chunk &&
    dd if=/tmp/soak-chunk of="/dev/$d" bs=1M seek=$((n % mib)) oflag=direct conv=fsync,notrunc \
      2>/dev/null &&
    [ "$(dd if="/dev/$d" bs=1M skip=$((n % mib)) count=1 iflag=direct 2>/dev/null | sha256sum)" = \
      "$(sha256sum </tmp/soak-chunk)" ]; then :; else bad=$((bad + 1)); fi
  n=$((n + 1))
  [ $((elapsed / 10)) -gt $said ] && said=$((elapsed / 10)) && echo "soak=$elapsed $n $bad"
done
echo "soak_done=$n $bad"

# Crash consistency under load (an action; runs until the VM is killed): mounts `agent.acked=`
# (default vda, ext4) at /mnt, says `acked_ready`, then for n = 1, 2, ... appends the 64-byte
# record `<agent.token> <n>` to /mnt/acked-<agent.token> with fsync and, with
# `agent.acked_raw=vdb`, writes it padded to 4 KiB at block n - 1 of that disk with O_DIRECT
# and fsync; prints `acked=<n>` once both have returned. Between records it rewrites and
# removes scratch files that are never synced (metadata the journal holds when the kill comes).
d=$(param acked)
d=${d:-vda}
raw=$(param acked_raw)
t=$(param token)
mkdir -p /mnt
mount -t ext4 "/dev/$d" /mnt || { echo "acked_mount=fail"; exit 1; }
log=/mnt/acked-$t
echo "acked_ready"
n=0
while :; do
  printf '%-63s\n' "$t $((n + 1))" |
    dd of="$log" bs=64 seek=$n iflag=fullblock conv=notrunc,fsync 2>/dev/null ||
    { echo "acked_write=fail"; exit 1; }
  if [ -n "$raw" ]; then
    printf '%-4095s\n' "$t $((n + 1))" |
      dd of="/dev/$raw" bs=4096 seek=$n iflag=fullblock oflag=direct conv=notrunc,fsync \
        2>/dev/null || { echo "acked_raw_write=fail"; exit 1; }
  fi
  n=$((n + 1))
  echo "acked=$n"
  head -c $((n % 8 * 16384)) /dev/urandom >"/mnt/churn-$((n % 4))"
  [ $((n % 3)) -eq 0 ] && rm -f "/mnt/churn-$(((n + 1) % 4))"
done

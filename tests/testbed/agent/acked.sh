# Crash consistency under load (an action; runs until the VM is killed): mounts `agent.acked=`
# (default vda, ext4) at /mnt, says `acked_ready`, then appends numbered 64-byte records
# `<agent.token> <n>` to /mnt/acked-<agent.token>, each with fsync, and prints `acked=<n>`
# once record n's fsync has returned. Between records it rewrites and removes scratch files
# that are never synced (metadata the journal holds when the kill comes).
d=$(param acked)
d=${d:-vda}
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
  n=$((n + 1))
  echo "acked=$n"
  head -c $((n % 8 * 16384)) /dev/urandom >"/mnt/churn-$((n % 4))"
  [ $((n % 3)) -eq 0 ] && rm -f "/mnt/churn-$(((n + 1) % 4))"
done

# Time and disk I/O across a suspend (`agent.action=clock`, `agent.clock=vdb`, a scratch disk):
# prints `clock_ready`, then for `agent.ticks=` seconds (default 16) writes a block of its own to
# the disk each second, reads it back and prints `tick=<uptime in centiseconds> <ok|bad>`. The
# host suspends the VM (in full) in the middle; the host's timestamps of the tick lines show the
# gap, the guest's own uptimes must not.
d=$(param clock)
n=$(param ticks)
n=${n:-16}
echo "clock_ready"
i=0
while [ $i -lt "$n" ]; do
  block=$(printf 'tick %s %s' "$i" "$(param token)")
  printf '%s' "$block" | dd of="/dev/$d" bs=4096 seek=$i count=1 conv=sync oflag=direct 2>/dev/null
  back=$(dd if="/dev/$d" bs=4096 skip=$i count=1 iflag=direct 2>/dev/null | tr -d '\0')
  read -r up _ </proc/uptime
  [ "$back" = "$block" ] && ok=ok || ok=bad
  echo "tick=$(echo "$up" | tr -d .) $ok"
  i=$((i + 1))
  sleep 1
done

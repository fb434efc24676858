# The balloon (`agent.action=balloon`), in turns with the host, which reads each `balloon_step=N`
# line and types a line back when its step is done: first the agent touches nearly all its free
# memory (a tmpfs file, then deleted, so the pages are free but resident on the host) and prints
# `balloon_avail_kb=<MemAvailable>` with `balloon_step=1`; the host inflates; the agent prints
# the figures again with `balloon_step=2`; the host deflates; the agent prints them a last time
# with `balloon_step=3`, reads the host's last line and returns.
avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
mkdir -p /tmp/fill && mount -t tmpfs -o size=95% tmpfs /tmp/fill
dd if=/dev/zero of=/tmp/fill/f bs=1M count=$(($(avail) / 1024 - 48)) 2>/dev/null
rm /tmp/fill/f
umount /tmp/fill
for step in 1 2 3; do
  echo "balloon_avail_kb=$(avail) step=$step"
  echo "balloon_step=$step"
  read -r _
done

#!/bin/sh
# /init of the L1 test-bed VM (busybox sh). Loads the modules listed in /modules/order,
# mounts the host's virtfs shares, then runs the scenarios the host harness wrote into the
# `work` share, framing each one's output on the console with @@SCENARIO markers, and powers
# off. The console markers are the interface to harness.ts; keep them in step with it.
export PATH=/bin:/usr/bin:/usr/sbin
export HOME=/root
umask 022

# The jailed device processes start in bubblewrap, whose pivot_root(2) refuses a root on the
# initial rootfs (EINVAL). So the initramfs is first copied into a tmpfs that becomes the root
# (switch_root frees the rootfs copy), and this script runs again from there.
if [ -z "$L1_ROOT_MOVED" ]; then
  mkdir /newroot
  mount -t tmpfs -o mode=0755 tmpfs /newroot
  for path in /*; do [ "$path" = /newroot ] || cp -a "$path" /newroot/; done
  export L1_ROOT_MOVED=1
  exec switch_root /newroot /init
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=75% tmpfs /tmp
mount -t tmpfs tmpfs /root
echo "@@L1 INIT"

while read -r mod; do
  insmod "/modules/$mod.ko" || echo "@@L1 WARN insmod $mod failed"
done </modules/order
[ -c /dev/kvm ] && kvm=yes || kvm=no

# cache=loose for the read-only shares (Deno is 5x slower without it); none for `work`,
# whose writes must reach the host before the power goes off.
share() { # TAG DIR OPTIONS
  mkdir -p "$2"
  mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,$3" "$1" "$2" ||
    echo "@@L1 WARN mount $1 failed"
}
share usr /usr cache=loose,ro
share work /mnt/work cache=none
export WORK=/mnt/work PROJECT=/mnt/project DENO=/mnt/deno/deno
export DENO_DIR=/tmp/deno_dir DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1 NO_COLOR=1
# Without TZ (and with no /etc/localtime) the first Date in a Deno process makes ICU scan
# /usr/share/zoneinfo over 9p: 10+ s, which once stalled a vCPU inside an RTC read.
export TZ=UTC
# env.sh may move $PROJECT to the host's own path, so the host's Deno cache matches.
[ -f "$WORK/env.sh" ] && . "$WORK/env.sh"
share project "$PROJECT" cache=loose,ro
share deno /mnt/deno cache=loose,ro
share assets /mnt/assets cache=loose,ro
# The host compiled the project's modules into $WORK/deno_dir: start Deno warm.
[ -d "$WORK/deno_dir" ] && cp -a "$WORK/deno_dir" "$DENO_DIR"
echo "@@RUNNER READY kvm=$kvm cpus=$(grep -c ^processor /proc/cpuinfo)"

# A scenario still running a minute after its timeout (its processes could not be killed, or a
# share stopped answering) gets the state of L1's processes and the kernel's blocked-task dump
# (sysrq w) on the console, once. It reads only /tmp and /proc, never a share.
stall_report() {
  while sleep 15; do
    for file in /tmp/.deadline.*; do
      [ -f "$file" ] || continue
      read -r name deadline <"$file"
      read -r now _ </proc/uptime
      [ "${now%.*}" -gt "$deadline" ] && break
      name=
    done
    [ -n "$name" ] || continue
    echo "@@L1 STALL $name: processes not sleeping (pid comm state wchan)"
    for p in /proc/[0-9]*; do
      read -r stat 2>/dev/null <"$p/stat" || continue
      state=${stat##*) }
      case "${state%% *}" in S | I) continue ;; esac
      read -r wchan 2>/dev/null <"$p/wchan"
      echo "@@L1 STALL ${p#/proc/} $(cat "$p/comm") ${state%% *} $wchan"
    done
    echo w >/proc/sysrq-trigger
    sleep 1
    dmesg | sed -n '/sysrq: Show Blocked State/,$p' | sed 's/^/@@L1 STALL /'
    rm -f "$file"
  done
}
stall_report >/dev/console 2>&1 &
# L1's own kernel saying one of its CPUs is stuck (a soft lockup or an RCU stall: seen with
# nested SVM under TCG, a vCPU thread spinning in L1's KVM for minutes) means L1 is broken, not
# the scenario: the host is told at once (harness.ts reboots L1; it reads L1's BUG, WARNING, oops
# and panic lines off the console itself). /dev/kmsg holds only L1's kernel log, never a guest's
# console; cat reads it a record at a time, as it must be read.
cat /dev/kmsg | while read -r record; do
  case "$record" in
  *"soft lockup"* | *"self-detected stall"* | *"detected stalls"*) echo "@@L1 LOCKUP ${record#*;}" ;;
  esac
done >/dev/console 2>&1 &
# A heartbeat while scenarios run, the work share's `heartbeat` touched every 10 s (a file, not
# the console, where it could land inside a guest's line): the host takes a minute without one
# for an L1 that stopped answering (its timers stopped), without waiting out the timeout.
while sleep 10; do touch "$WORK/heartbeat"; done &

# The scenarios, in as many lanes at once as the host asked for (l1_runner.sh).
sh "$PROJECT/tests/testbed/l1_runner.sh"

echo "@@RUNNER DONE"
sync
poweroff -f

#!/bin/sh
# /init of the L2 test guest (busybox sh): a test agent. Loads the virtio modules it carries,
# reports facts between @@AGENT BEGIN/END as key=value lines, then does what `agent.action=`
# on the kernel command line says: poweroff (default), reboot, panic (crash the kernel through
# sysrq), shell, echo (read one line from the console, print `echo=<line>`, power off) or hang
# (print `@@AGENT HANG` and sleep, for a host that kills the VMM). With `initcall_debug` on the
# command line it also reports the initcalls slower than 50 ms.
#
# Root disks: with `root=/dev/vdX` on the command line the agent mounts that disk (ext4 or
# `rootfstype=`; read-only unless `rw` is on the command line, as the kernel does) and
# switch_roots into it, running its /sbin/init: the same agent in images built by
# mkrootfs.sh, which then reports `root=<device> <fstype> <ro|rw>`. A root that cannot be
# mounted is reported as `root_error=` from the initramfs.
#
# Scripts: `agent.run=a,b` runs /agent/a.sh, /agent/b.sh (see agent/README.md) inside the
# report, in a subshell each; their output lines are report lines. `agent.action=NAME` that is
# no built-in action runs /agent/NAME.sh the same way and then powers off. Scripts read their
# parameters `agent.NAME=VALUE` with `param NAME`.
#
# Every console byte is a VM exit: keep the output short.
export PATH=/bin
set -f
mounted() { grep -q "^[^ ]* $1 " /proc/mounts; }
[ -e /proc/mounts ] || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev

# After switch_root the modules are loaded already: AGENT_MODULES carries what loaded.
if [ -z "$AGENT_ROOT" ] && [ -f /modules/order ]; then
  loaded=
  while read -r mod; do
    insmod "/modules/$mod.ko" 2>/dev/null && loaded="$loaded${loaded:+,}$mod"
  done </modules/order
  export AGENT_MODULES="$loaded"
fi

cmdline=$(cat /proc/cmdline)
action=poweroff
run=
root=
rootmode=ro
rootfstype=ext4
for word in $cmdline; do
  case "$word" in
    agent.action=*) action=${word#*=} ;;
    agent.run=*) run=${word#*=} ;;
    root=*) root=${word#root=} ;;
    rootfstype=*) rootfstype=${word#*=} ;;
    ro | rw) rootmode=$word ;;
  esac
done

# The value of `agent.$1=` on the command line (for scripts).
param() {
  for w in $cmdline; do
    case "$w" in "agent.$1="*)
      echo "${w#*=}"
      return
      ;;
    esac
  done
}

root_error=
if [ -n "$root" ] && [ -z "$AGENT_ROOT" ]; then
  i=0
  while [ ! -b "$root" ] && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  mkdir -p /newroot
  if err=$(mount -t "$rootfstype" -o "$rootmode" "$root" /newroot 2>&1); then
    if [ -x /newroot/sbin/init ] && mount --move /dev /newroot/dev &&
      mount --move /proc /newroot/proc && mount --move /sys /newroot/sys; then
      export AGENT_ROOT="$root"
      exec switch_root /newroot /sbin/init
    fi
    root_error="no /sbin/init, /dev, /proc or /sys on $root"
    mounted /newroot/dev && mount --move /newroot/dev /dev
    mounted /newroot/proc && mount --move /newroot/proc /proc
    mounted /newroot/sys && mount --move /newroot/sys /sys
    umount /newroot
  else
    root_error="mount $root: $(echo "$err" | head -n 1)"
  fi
fi

# Runs /agent/$1.sh in a subshell: its output lines are report lines.
agent_run() {
  if [ -f "/agent/$1.sh" ]; then
    (
      set +f
      . "/agent/$1.sh"
    )
  else
    echo "$1=no-script"
  fi
}

case "$action" in
  poweroff | reboot | panic | shell | echo | hang) ;;
  *)
    run="$run${run:+,}$action"
    action=poweroff
    ;;
esac

echo "@@AGENT BEGIN"
echo "cmdline=$cmdline"
echo "cpus=$(grep -c ^processor /proc/cpuinfo)"
echo "cpus_online=$(cat /sys/devices/system/cpu/online)"
echo "memtotal_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
# All the RAM the kernel found in its memory map ("Memory: free/total available").
echo "memory_kb=$(dmesg | sed -n 's/.*Memory: [0-9]*K\/\([0-9]*\)K available.*/\1/p')"
[ -r /sys/class/rtc/rtc0/since_epoch ] && echo "rtc_epoch=$(cat /sys/class/rtc/rtc0/since_epoch)"
echo "date=$(date +%s)"
echo "modules=$AGENT_MODULES"
[ -n "$AGENT_ROOT" ] &&
  echo "root=$(awk '$2 == "/" { split($4, o, ","); r = $1 " " $3 " " o[1] } END { print r }' \
    /proc/mounts)"
[ -n "$root_error" ] && echo "root_error=$root_error"
# With initcall_debug on the command line: the initcalls that took over 50 ms.
case " $cmdline " in *" initcall_debug "*)
  dmesg | sed -n 's/.*initcall \([^ ]*\) returned .* after \([0-9]*\) usecs/\1 \2/p' |
    while read -r fn us; do [ "$us" -gt 50000 ] && echo "initcall=$fn:$us"; done
  ;;
esac
for script in $(echo "$run" | tr , ' '); do agent_run "$script"; done
echo "@@AGENT END"

# The UART sends what `echo` queued from the kernel's tty buffer, under interrupts: a reboot
# or power-off while bytes are still queued drops them. Wait until COM1's transmit count
# stops moving.
drain() {
  sent=
  while now=$(sed -n 's/^0: .* tx:\([0-9]*\).*/\1/p' /proc/tty/driver/serial) &&
    [ "$now" != "$sent" ]; do
    sent=$now
    sleep 0.2
  done
}
# Before the power goes: a writable root disk is left clean (remounted read-only).
settle() {
  sync
  [ -n "$AGENT_ROOT" ] && mount -o remount,ro / 2>/dev/null
  drain
}

case "$action" in
  reboot)
    settle
    reboot -f
    ;;
  panic)
    drain
    echo c >/proc/sysrq-trigger
    ;;
  shell)
    setsid cttyhack sh
    settle
    poweroff -f
    ;;
  echo)
    read -r line
    echo "echo=$line"
    settle
    poweroff -f
    ;;
  hang)
    drain
    echo "@@AGENT HANG"
    while :; do sleep 3600; done
    ;;
  *)
    settle
    poweroff -f
    ;;
esac
# Only reached if the power could not be cut; reboot=t turns this into a triple fault.
reboot -f

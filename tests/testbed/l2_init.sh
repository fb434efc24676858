#!/bin/sh
# /init of the L2 test guest (busybox sh): a test agent. Loads the virtio modules it carries,
# reports facts between @@AGENT BEGIN/END as key=value lines, then does what `agent.action=`
# on the kernel command line says: poweroff (default), reboot, panic (crash the kernel through
# sysrq), shell, or echo (read one line from the console, print `echo=<line>`, power off). With `initcall_debug` on the command line
# it also reports the initcalls slower than 50 ms. Every console byte is a VM exit: keep the
# output short.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

loaded=
while read -r mod; do
  insmod "/modules/$mod.ko" 2>/dev/null && loaded="$loaded${loaded:+,}$mod"
done </modules/order

cmdline=$(cat /proc/cmdline)
action=poweroff
for word in $cmdline; do
  case "$word" in agent.action=*) action=${word#agent.action=} ;; esac
done

echo "@@AGENT BEGIN"
echo "cmdline=$cmdline"
echo "cpus=$(grep -c ^processor /proc/cpuinfo)"
echo "cpus_online=$(cat /sys/devices/system/cpu/online)"
echo "memtotal_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
# All the RAM the kernel found in its memory map ("Memory: free/total available").
echo "memory_kb=$(dmesg | sed -n 's/.*Memory: [0-9]*K\/\([0-9]*\)K available.*/\1/p')"
[ -r /sys/class/rtc/rtc0/since_epoch ] && echo "rtc_epoch=$(cat /sys/class/rtc/rtc0/since_epoch)"
echo "date=$(date +%s)"
echo "modules=$loaded"
# With initcall_debug on the command line: the initcalls that took over 50 ms.
case " $cmdline " in *" initcall_debug "*)
  dmesg | sed -n 's/.*initcall \([^ ]*\) returned .* after \([0-9]*\) usecs/\1 \2/p' |
    while read -r fn us; do [ "$us" -gt 50000 ] && echo "initcall=$fn:$us"; done ;;
esac
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

case "$action" in
  reboot) drain; reboot -f ;;
  panic) drain; echo c >/proc/sysrq-trigger ;;
  shell)
    setsid cttyhack sh
    poweroff -f
    ;;
  echo)
    read -r line
    echo "echo=$line"
    drain
    poweroff -f
    ;;
  *) drain; poweroff -f ;;
esac
# Only reached if the power could not be cut; reboot=t turns this into a triple fault.
reboot -f

#!/bin/sh
# Usage: timeout_report.sh SID
# What L1 prints of a scenario that ran out of time, just before it kills it: one line per
# thread of each process in session SID (the scenario's), "@@L1 TIMEOUT PID/TID COMM STATE
# WCHAN", so that the failure shows where each one was waiting. When a Worker thread of the
# scenario was running, "@@L1 KVM" lines from L1's own tracefs: what its guest was doing, and
# "@@L1 VCPU RUNNING PID/TID..." for those that were entering a guest (harness.ts then runs the
# scenario again on a fresh L1). Reads only /proc
# and tracefs.
sid=$1
running_workers=
for p in /proc/[0-9]*; do
  read -r stat 2>/dev/null <"$p/stat" || continue
  # After "(comm) ": state, ppid, pgrp, session.
  set -- ${stat##*) }
  [ "$4" = "$sid" ] || continue
  for t in "$p"/task/[0-9]*; do
    read -r stat 2>/dev/null <"$t/stat" || continue
    set -- ${stat##*) }
    read -r comm 2>/dev/null <"$t/comm"
    read -r wchan 2>/dev/null <"$t/wchan"
    echo "@@L1 TIMEOUT ${p#/proc/}/${t##*/} $comm $1 ${wchan:--}"
    # Deno names a Worker's thread worker-N: here, a vCPU or a device Worker.
    case "$comm $1" in "worker-"*" R") running_workers="$running_workers ${p#/proc/}/${t##*/}" ;; esac
  done
done

# A Worker thread that is running may be a vCPU busy in KVM_RUN while its guest makes no
# progress: one second of L1's KVM trace events says whether it is (it enters the guest) and
# what the guest is doing, as counts of each event, of each exit reason at each guest RIP and of
# each port and MMIO address touched, then the last exits and injections themselves.
[ -n "$running_workers" ] || exit 0
trace=/sys/kernel/tracing
[ -d "$trace/events" ] || mount -t tracefs tracefs "$trace" 2>/dev/null || exit 0
[ -d "$trace/events/kvm" ] || exit 0
echo 256 >"$trace/buffer_size_kb"
echo >"$trace/trace"
echo 1 >"$trace/events/kvm/enable"
sleep 1
echo 0 >"$trace/events/kvm/enable"
# A trace line starts with COMM-TID.
entering=$(awk '/kvm_entry:/ { n = split($1, part, "-"); print part[n] }' "$trace/trace" | sort -u)
vcpus=
for thread in $running_workers; do
  for tid in $entering; do [ "${thread#*/}" = "$tid" ] && vcpus="$vcpus $thread"; done
done
[ -n "$vcpus" ] && echo "@@L1 VCPU RUNNING$vcpus"
awk '/^ *#/ { next }
  { for (i = 1; i <= NF; i++) if ($i ~ /^kvm_[a-z_]+:$/) { events[$i]++; break } }
  /kvm_exit:/ { for (i = 1; i <= NF; i++) {
      if ($i == "reason") reason = $(i + 1); if ($i == "rip") rip = $(i + 1) }
    exits[reason " " rip]++ }
  /kvm_pio:/ { for (i = 1; i <= NF; i++) if ($i == "at") pio[$(i - 1) " " $(i + 1)]++ }
  /kvm_mmio:/ { for (i = 1; i <= NF; i++) if ($i == "gpa") mmio[$(i - 3) " " $(i + 1)]++ }
  END { for (e in events) print "@@L1 KVM " events[e] " " e
    for (x in exits) print "@@L1 KVM " exits[x] " exit " x
    for (x in pio) print "@@L1 KVM " pio[x] " " x
    for (x in mmio) print "@@L1 KVM " mmio[x] " mmio " x }' "$trace/trace" | sort -t" " -k3,3nr | head -n 30
grep -E 'kvm_(exit|inj_virq|pio|mmio|msr|userspace_exit):' "$trace/trace" | tail -n 20 | sed 's/^ */@@L1 KVM /'
echo >"$trace/trace"

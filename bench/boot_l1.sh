#!/bin/sh
# The L1 side of the boot benchmark's memory runs (bench/boot.ts), run by busybox sh inside the
# test bed's L1. The watching loop uses shell builtins only (no fork per look), so it costs the
# start-up it measures little.
#
#   boot_l1.sh watch ROOT   until ROOT exits, every 50 ms look for jailed device processes (a
#                          Deno whose parent is a bwrap, below ROOT) and print, once each has
#                          loaded its seccomp filter (/proc/PID/status `Seccomp: 2`, just before
#                          it tells the VMM it is ready), `@@DEV <pid> vmm=<s> spawn=<s>
#                          exec=<s> ready=<s>`: the L1 boot-clock seconds at which the VMM, the
#                          device's outer bwrap and its Deno were started (/proc/PID/stat), and
#                          when the filter was first seen (/proc/uptime).
#   boot_l1.sh pss VMM      `@@PSS <pid> <parent> <comm> <Pss> <Pss_Anon> <Pss_File>
#                          <Pss_Shmem>` (kB) for VMM and each of its descendants
#                          (/proc/PID/smaps_rollup).
set -u
. "$(dirname "$0")/l1_lib.sh"
TREE=/tmp/.boot_l1_tree
TICKS=100 # USER_HZ: the unit of the start time in /proc/PID/stat

started_of() { # PID: its start time, seconds since L1 booted
  stat_of "$1" 22
  REPLY="$((REPLY / TICKS)).$((REPLY % TICKS / 10))$((REPLY % 10))"
}

watch() { # ROOT
  reported=" "
  while kill -0 "$1" 2>/dev/null; do
    descendants "$1" >$TREE
    while read -r pid parent; do
      case "$reported" in *" $pid "*) continue ;; esac
      comm_of "$pid"
      [ "$REPLY" = deno ] || continue
      comm_of "$parent"
      [ "$REPLY" = bwrap ] || continue
      field_of "$pid" status Seccomp:
      [ "$REPLY" = 2 ] || continue
      read -r now _ </proc/uptime
      # Up from the jail's pid 1 (the inner bwrap) to the outer bwrap, whose parent is the VMM.
      outer=$parent
      while stat_of "$outer" 4 && comm_of "$REPLY" && [ "$REPLY" = bwrap ]; do
        stat_of "$outer" 4
        outer=$REPLY
      done
      stat_of "$outer" 4
      started_of "$REPLY"
      vmm=$REPLY
      started_of "$outer"
      spawn=$REPLY
      started_of "$pid"
      echo "@@DEV $pid vmm=$vmm spawn=$spawn exec=$REPLY ready=$now"
      reported="$reported$pid "
    done <$TREE
    sleep 0.05
  done
  rm -f $TREE
}

pss() { # VMM
  { echo "$1 -" && descendants "$1"; } | while read -r pid parent; do
    comm_of "$pid"
    comm=$REPLY
    line="@@PSS $pid $parent $comm"
    for key in Pss: Pss_Anon: Pss_File: Pss_Shmem:; do
      field_of "$pid" smaps_rollup $key
      line="$line $REPLY"
    done
    echo "$line"
  done
}

cmd=$1
shift
"$cmd" "$@"

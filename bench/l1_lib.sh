# Shell functions for the benchmarks' L1 scripts (boot_l1.sh, blk_l1.sh, net_l1.sh), sourced by them; busybox
# sh. The REPLY setters read /proc with builtins only (no command substitution, so no fork).

# "<pid> <parent>" for each descendant of process $1, parents first.
descendants() {
  local task kids kid
  for task in /proc/"$1"/task/*; do
    kids=
    read -r kids 2>/dev/null <"$task/children"
    for kid in $kids; do
      echo "$kid $1"
      descendants "$kid"
    done
  done
}

comm_of() { # PID: REPLY=its command name
  REPLY=
  read -r REPLY 2>/dev/null <"/proc/$1/comm"
}

stat_of() { # PID N: REPLY=field N of /proc/PID/stat (N >= 3, after the command name)
  local stat
  REPLY=
  read -r stat 2>/dev/null <"/proc/$1/stat" || return
  set -- "$2" ${stat##*) }
  shift $(($1 - 2))
  REPLY=$1
}

field_of() { # PID FILE KEY: REPLY=the first word after KEY in /proc/PID/FILE, or 0
  local key value rest
  REPLY=0
  while read -r key value rest; do
    [ "$key" = "$3" ] && REPLY=$value && return
  done 2>/dev/null <"/proc/$1/$2"
}

KVM_DEBUGFS=/sys/kernel/debug/kvm
# L1's KVM counters (summed over its VMs: only the benchmark's VM runs) and halt times in ns.
KVM_STATS="exits io_exits mmio_exits signal_exits irq_window_exits halt_exits halt_wakeup
  irq_injections insn_emulation pf_emulate pf_fast req_event halt_wait_ns halt_poll_success_ns
  halt_poll_fail_ns"

mount_debugfs() { # L1's KVM counters, for snapshot
  grep -q " /sys/kernel/debug " /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug
}

# "<pid> vhost" for each kernel thread named vhost-VMM: the VMM's vhost workers (Linux before
# 6.4 runs them as kernel threads, not below the VMM).
vhost_workers() { # VMM
  local p comm
  for p in /proc/[0-9]*; do
    read -r comm 2>/dev/null <"$p/comm" || continue
    [ "$comm" = "vhost-$1" ] && echo "${p#/proc/} vhost"
  done
}

io_of() { # TASK_DIR: REPLY="<syscr> <syscw>", the read- and write-type syscalls it made
  local key value r=0 w=0
  while read -r key value; do
    case "$key" in
      syscr:) r=$value ;;
      syscw:) w=$value ;;
    esac
  done 2>/dev/null <"$1/io"
  REPLY="$r $w"
}

# Appends to FILE `@@ST TAG name=value…` (L1's KVM counters, then each `name=path` of
# $SNAP_EXTRA read from its file) and one `@@TH TAG <tid> <utime> <stime> <guest_time>
# [<who> ]<comm>` and one `@@IO TAG <tid> <syscr> <syscw>` (/proc/…/io: read- and write-type
# syscalls) per thread of VMM, of every process below it (who: "jail", a jailed device's) and of
# its vhost workers ("vhost worker").
snapshot() { # TAG VMM FILE
  local tag=$1 vmm=$2 out=$3 s f v name path p parent prefix t st comm
  s="@@ST $tag"
  for f in $KVM_STATS; do
    [ -r "$KVM_DEBUGFS/$f" ] && read -r v <"$KVM_DEBUGFS/$f" && s="$s $f=$v"
  done
  for f in ${SNAP_EXTRA:-}; do
    name=${f%%=*}
    path=${f#*=}
    read -r v 2>/dev/null <"$path" && s="$s $name=$v"
  done
  echo "$s" >>"$out"
  { echo "$vmm -" && descendants "$vmm" && vhost_workers "$vmm"; } | while read -r p parent; do
    case "$parent" in
      -) prefix= ;;
      vhost) prefix="vhost " ;;
      *) prefix="jail " ;;
    esac
    for t in /proc/$p/task/*; do
      read -r st 2>/dev/null <"$t/stat" || continue
      read -r comm 2>/dev/null <"$t/comm" || continue
      [ "$parent" = vhost ] && comm=worker # not vhost-<pid>: one name across runs
      # Fields 14, 15 and 43 of the stat line: utime, stime, guest_time (the text after the
      # command name starts at field 3).
      set -- ${st##*) }
      echo "@@TH $tag ${t##*/} ${12} ${13} ${41} $prefix$comm" >>"$out"
      io_of "$t"
      echo "@@IO $tag ${t##*/} $REPLY" >>"$out"
    done
  done
}

# Echoes the VMM's console from FIFO until it closes, snapshotting (tag B<phase> or E<phase>)
# at each line holding `@B <phase>` or `@E <phase>`; then waits for VMM and prints the
# snapshots, so none lands on the console mid-phase. Returns the VMM's status.
relay_with_snapshots() { # VMM FIFO
  local snaps="$2.snaps" line kind phase status
  : >"$snaps"
  while IFS= read -r line; do
    echo "$line"
    case "$line" in
      *"@B "*) kind=B ;;
      *"@E "*) kind=E ;;
      *) continue ;;
    esac
    phase=${line#*@[BE] }
    snapshot "$kind${phase%% *}" "$1" "$snaps"
  done <"$2"
  wait "$1"
  status=$?
  cat "$snaps"
  rm -f "$snaps"
  return $status
}

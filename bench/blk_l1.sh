#!/bin/sh
# The L1 side of the block benchmark (bench/blk.ts), run by busybox sh inside the test bed's L1.
#
#   blk_l1.sh setup MODE MIB [BRD_KO]   make the disk: MODE direct = a brd RAM disk /dev/ram0
#                                      (O_DIRECT works on it), cached = /tmp/blk.img on tmpfs
#   blk_l1.sh run VMM MODE INITRD PARAMS
#                                      boot L2 with VMM (qemu; jailed: ours, its device in a
#                                      jailed process, the default; unjailed: ours with
#                                      --disable-sandbox) on that disk, echo its console, and
#                                      snapshot L1's KVM counters and the per-thread CPU ticks of
#                                      the VMM and every process below it (a jailed device's)
#                                      whenever a phase begins or ends (`@B`/`@E` lines); the
#                                      snapshots are printed after the VMM exits, so none lands
#                                      on the console mid-phase.
set -u
. "$(dirname "$0")/l1_lib.sh"
disk() {
  case "$1" in
    direct) echo /dev/ram0 ;;
    *) echo /tmp/blk.img ;;
  esac
}

setup() { # MODE MIB [BRD_KO]
  mount_debugfs
  [ -r $KVM_DEBUGFS/exits ] || echo "@@BLK WARN no $KVM_DEBUGFS/exits"
  # Whether L1's tmpfs takes O_DIRECT (Linux 6.6+ only).
  if dd if=/dev/zero of=/tmp/.odirect bs=4096 count=1 oflag=direct 2>/dev/null; then
    echo "@@BLK tmpfs_odirect=yes"
  else
    echo "@@BLK tmpfs_odirect=no"
  fi
  rm -f /tmp/.odirect
  case "$1" in
    direct)
      [ -b /dev/ram0 ] || insmod "$3" rd_nr=1 rd_size=$(($2 * 1024)) max_part=0 || exit 1
      ;;
  esac
  # Every block allocated before the first run, so both VMMs read real pages.
  dd if=/dev/zero of="$(disk "$1")" bs=1M count="$2" 2>/dev/null || exit 1
  if [ "$1" = direct ]; then
    echo "@@BLK disk=/dev/ram0 $(blockdev --getsize64 /dev/ram0) bytes"
  else
    echo "@@BLK disk=/tmp/blk.img $(stat -c %s /tmp/blk.img) bytes"
  fi
}

run() { # VMM MODE INITRD PARAMS
  vmm=$1
  mode=$2
  initrd=$3
  params=$4
  img=$(disk "$mode")
  if [ "$mode" = direct ]; then
    ours_disk="$img,direct"
    qemu_drive="file=$img,if=none,id=d0,format=raw,cache=none,aio=native"
  else
    ours_disk="$img"
    qemu_drive="file=$img,if=none,id=d0,format=raw,cache=writeback,aio=threads"
  fi
  dir=$(mktemp -d)
  mkfifo "$dir/out"
  case "$vmm" in
    jailed | unjailed)
      [ "$vmm" = unjailed ] && sandbox=--disable-sandbox || sandbox=
      "$DENO" run --allow-all "$PROJECT/main.ts" run --mem 256 --cpus 1 --no-rng $sandbox \
        -b "$ours_disk" -p "quiet reboot=t panic=-1 $params" -i "$initrd" "$L2_VMLINUX" \
        </dev/null >"$dir/out" 2>&1 &
      ;;
    qemu)
      qemu-system-x86_64 -accel kvm -M microvm,rtc=on,pcie=on -cpu host -m 256 -smp 1 \
        -name blk,debug-threads=on -nodefaults -no-user-config -display none -serial stdio -no-reboot \
        -drive "$qemu_drive" -device virtio-blk-pci,drive=d0 \
        -kernel "$L2_VMLINUX" -initrd "$initrd" \
        -append "console=ttyS0 quiet reboot=t panic=-1 $params" \
        </dev/null >"$dir/out" 2>&1 &
      ;;
  esac
  relay_with_snapshots $! "$dir/out"
  status=$?
  rm -rf "$dir"
  return $status
}

cmd=$1
shift
"$cmd" "$@"

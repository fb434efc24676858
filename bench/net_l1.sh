#!/bin/sh
# The L1 side of the network benchmark (bench/net.ts), run by busybox sh inside the test bed's L1.
#
#   net_l1.sh setup TAP CIDR    make the persistent TAP every run uses (vnet_hdr, CIDR on it,
#                               up) and report `@@NET vhost_net=yes|no`
#   net_l1.sh run TAP NEEDS COMMAND
#                               boot L2 with COMMAND (a VMM's command line on that TAP) while an
#                               iperf3 server listens in L1, echo its console, and snapshot L1's
#                               KVM counters, the TAP's packet and byte counters and the
#                               per-thread CPU ticks of the VMM, the processes below it (a jailed
#                               device's) and its vhost workers whenever a phase begins or ends
#                               (`@B`/`@E` lines; printed after the VMM exits). NEEDS is a path
#                               COMMAND needs (`-` for none): where it is missing the run only
#                               prints `@@NET SKIP <path>`.
set -u
. "$(dirname "$0")/l1_lib.sh"
# iproute2's ip, from the host's /usr: busybox's, first on PATH, has no tuntap.
IP=/usr/bin/ip

setup() { # TAP CIDR
  mount_debugfs
  $IP tuntap add dev "$1" mode tap vnet_hdr && $IP addr add "$2" dev "$1" &&
    $IP link set "$1" up || exit 1
  [ -c /dev/vhost-net ] && echo "@@NET vhost_net=yes" || echo "@@NET vhost_net=no"
}

run() { # TAP NEEDS COMMAND
  if [ "$2" != - ] && [ ! -e "$2" ]; then
    echo "@@NET SKIP $2"
    return 0
  fi
  stats=/sys/class/net/$1/statistics
  SNAP_EXTRA=
  for f in rx_packets rx_bytes tx_packets tx_bytes rx_dropped tx_dropped; do
    SNAP_EXTRA="$SNAP_EXTRA tap_$f=$stats/$f"
  done
  iperf3 -s >/dev/null 2>&1 &
  server=$!
  dir=$(mktemp -d)
  mkfifo "$dir/out"
  # exec: the VMM is the background job itself, the root of the snapshots' process tree.
  eval "exec $3" </dev/null >"$dir/out" 2>&1 &
  relay_with_snapshots $! "$dir/out"
  status=$?
  kill $server
  rm -rf "$dir"
  return $status
}

cmd=$1
shift
"$cmd" "$@"

# /agent/netbench.sh in the L2 initramfs of the network benchmark (bench/net.ts appends it to
# the test agent's initramfs with iperf3, $L2_TOOLS_INITRD; `agent.action=netbench` runs it).
# Parameters: `agent.net=IP/LEN agent.peer=IP agent.net_secs=S agent.rr_secs=S`. Brings eth0
# up with the address, then three phases against the iperf3 server and the kernel of PEER:
#   tx  TCP from this guest to PEER for S seconds (iperf3 -c)
#   rx  TCP from PEER to this guest for S seconds (iperf3 -c -R)
#   rr  request/response: ICMP echo, each request sent when the last reply came (ping -A)
# Each phase is framed by `@B <phase> <irqs>` and `@E <phase> <irqs> <result>` lines, where
# <irqs> is `<receive> <transmit>`: the interrupts of virtio-net's input.0 and output.0 vectors
# so far (/proc/interrupts, all CPUs), and <result> is `<seconds> <Kbits/s>` from iperf3's
# receiver line, or `<replies> <average round trip ms>` for rr. A failure is one
# `@NET` line. Keep the output short: every console byte is a VM exit.
ip addr add "$(param net)" dev eth0 && ip link set eth0 up
peer=$(param peer)
secs=$(param net_secs)
# The link up and the peer's MAC known before anything is timed.
ping -c 1 -W 10 "$peer" >/dev/null || echo "@NET no reply from $peer"

irqs() {
  awk '
    function count(   i, n) { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i; return n }
    /input\.0$/ { rx += count() }
    /output\.0$/ { tx += count() }
    END { print rx + 0, tx + 0 }' /proc/interrupts
}

iperf() { # PHASE IPERF3_ARGS...
  phase=$1
  shift
  echo "@B $phase $(irqs)"
  out=$(iperf3 -c "$peer" -t "$secs" -i 0 -f k "$@" 2>&1)
  result=$(echo "$out" | awk '
    /receiver/ {
      for (i = 2; i <= NF; i++) {
        if ($i == "sec") split($(i - 1), t, "-")
        if ($i == "Kbits/sec") rate = $(i - 1)
      }
    }
    END { if (rate != "") print t[2] - t[1], rate }')
  echo "@E $phase $(irqs) $result"
  [ -n "$result" ] || echo "@NET iperf3 $*: $(echo "$out" | tail -n 1)"
}

iperf tx
iperf rx -R
echo "@B rr $(irqs)"
out=$(ping -A -q -w "$(param rr_secs)" "$peer" 2>&1)
replies=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
average=$(echo "$out" | sed -n 's|.*min/avg/max = [0-9.]*/\([0-9.]*\)/.*|\1|p')
echo "@E rr $(irqs) $replies $average"
[ -n "$average" ] || echo "@NET ping: $(echo "$out" | tail -n 1)"

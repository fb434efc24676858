# The NIC (`agent.net=10.77.0.2/24 agent.peer=10.77.0.1 agent.port=PORT agent.send=BYTES`): eth0
# gets the address and comes up; prints `net_mac=` (eth0's MAC), `net_mtu=`, `net_queues=` (the
# queues the driver uses, from sysfs), `net_ping=<replies to 3 pings of the peer>`, then reads
# what a TCP connection to PEER:PORT sends until the peer closes it: `net_fetched=<bytes>
# <sha256>`; then sends BYTES of random data to PEER:PORT+1 and closes: `net_sent=<bytes>
# <sha256>`.
ip addr add "$(param net)" dev eth0 && ip link set eth0 up
peer=$(param peer)
port=$(param port)
echo "net_mac=$(cat /sys/class/net/eth0/address)"
echo "net_mtu=$(cat /sys/class/net/eth0/mtu)"
echo "net_queues=$(ls /sys/class/net/eth0/queues | tr '\n' ' ')"
echo "net_ping=$(ping -c 3 -W 5 "$peer" 2>&1 | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')"
nc "$peer" "$port" </dev/null >/tmp/payload
echo "net_fetched=$(wc -c </tmp/payload) $(sha256sum </tmp/payload | cut -d' ' -f1)"
head -c "$(param send)" /dev/urandom >/tmp/upload
echo "net_sent=$(wc -c </tmp/upload) $(sha256sum </tmp/upload | cut -d' ' -f1)"
nc "$peer" "$((port + 1))" </tmp/upload >/dev/null

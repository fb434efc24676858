# Unbinds eth0's virtio-pci function from its driver and binds it again (the device is reset,
# then started afresh), gives the new interface the address (`agent.net=IP/LEN`), pings the peer
# (`agent.peer=IP`) and reads from PEER:PORT (`agent.port=PORT`) once more:
# `netrebind=<pci> gone=<yes|no> <new name>`,
# `netrebind_ping=<replies of 3>`, `netrebind_fetched=<bytes> <sha256>`.
peer=$(param peer)
pci=$(readlink -f /sys/class/net/eth0/device/..)
pci=${pci##*/}
echo "$pci" >/sys/bus/pci/drivers/virtio-pci/unbind
gone=yes
[ -e /sys/class/net/eth0 ] && gone=no
echo "$pci" >/sys/bus/pci/drivers/virtio-pci/bind
new=
i=0
while [ $i -lt 50 ]; do
  new=$(ls "/sys/bus/pci/devices/$pci"/virtio*/net 2>/dev/null)
  [ -n "$new" ] && break
  sleep 0.1
  i=$((i + 1))
done
echo "netrebind=$pci gone=$gone $new"
ip addr add "$(param net)" dev "$new" && ip link set "$new" up
echo "netrebind_ping=$(ping -c 3 -W 5 "$peer" 2>&1 | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')"
nc "$peer" "$(param port)" </dev/null >/tmp/payload2
echo "netrebind_fetched=$(wc -c </tmp/payload2) $(sha256sum </tmp/payload2 | cut -d' ' -f1)"

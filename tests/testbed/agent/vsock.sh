# vsock (`agent.run=vsock`): makes a 4 MiB payload (`vsock_payload=<sha256>`), serves it on port
# 1234 to 17 host connections at once (`@@VSOCK READY` when listening, `vsock_served=<status>`),
# sends it to the host's port 5000 (`vsock_sent=<status>`), then unbinds and rebinds the vsock
# driver and sends it again to port 5001 (`vsock_rebound=<status>`).
head -c 4194304 /dev/urandom >/tmp/payload
echo "vsock_payload=$(sha256sum </tmp/payload | cut -d' ' -f1)"
vsock_peer serve 1234 /tmp/payload 17 &
server=$!
sleep 1
echo "@@VSOCK READY"
vsock_peer send 2 5000 /tmp/payload
echo "vsock_sent=$?"
wait $server
echo "vsock_served=$?"
driver=/sys/bus/virtio/drivers/vmw_vsock_virtio_transport
dev=$(ls "$driver" | grep '^virtio')
echo "$dev" >"$driver/unbind" && echo "$dev" >"$driver/bind"
vsock_peer send 2 5001 /tmp/payload
echo "vsock_rebound=$?"

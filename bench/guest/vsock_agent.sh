# bench/vsock's guest side (`agent.action=vsockbench`, appended to the agent's initramfs): the
# servers the host's client (bench/vsock_l1.py) measures against, each taking its connections
# one after another, then the report ends: guest→host bytes on port 5001 (`agent.bytes=` each,
# `agent.rounds=` connections), host→guest on 5002 (as many), and `agent.connects=` connections
# closed at once on 5003.
bytes=$(param bytes)
rounds=$(param rounds)
vsock_peer source 5001 "$bytes" "$rounds" &
vsock_peer sink 5002 "$rounds" &
vsock_peer accepts 5003 "$(param connects)" &
sleep 1
echo "@@VSOCK READY"
wait
echo "vsockbench=done"

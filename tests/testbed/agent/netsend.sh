# Sends what net.sh fetched (/tmp/payload) to the peer (`agent.peer=IP`) over TCP, on the port
# after net.sh's (`agent.port=P`: P + 1), until the peer closes: `net_sent=<nc's exit status>`.
nc "$(param peer)" "$(($(param port) + 1))" </tmp/payload >/dev/null
echo "net_sent=$?"

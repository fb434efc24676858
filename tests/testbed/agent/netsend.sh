# Sends what net.sh fetched (/tmp/payload) to the peer (`agent.peer=IP`) on port 8001 over TCP,
# until the peer closes: `net_sent=<nc's exit status>`.
nc "$(param peer)" 8001 </tmp/payload >/dev/null
echo "net_sent=$?"

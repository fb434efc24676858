# Crash consistency: writes `agent.token=` to /crash.txt and syncs: `crash_synced=<token>`
# once sync has returned (or `crash_write=fail`). Pair with agent.action=hang, and kill the
# VMM on `@@AGENT HANG`.
t=$(param token)
if echo "$t" >/crash.txt && sync; then
  echo "crash_synced=$t"
else
  echo "crash_write=fail"
fi

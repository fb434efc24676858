# Persistence on a writable root: `persist_old=` what /persist.txt held at boot, then writes
# `agent.token=` there and syncs: `persist_new=<token>` (or `persist_write=fail`).
echo "persist_old=$(cat /persist.txt 2>/dev/null)"
t=$(param token)
if [ -n "$t" ]; then
  if echo "$t" >/persist.txt && sync; then
    echo "persist_new=$t"
  else
    echo "persist_write=fail"
  fi
fi

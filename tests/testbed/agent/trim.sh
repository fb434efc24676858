# Discard on the root file system (disk `agent.trim=vda`, the default): `discard_max=` and
# `write_zeroes_max=` (bytes, from the disk's queue limits); then writes 16 MiB to /trim.bin,
# deletes it and runs fstrim on /: `trim=<bytes trimmed>` (or fstrim's error).
d=$(param trim)
q=/sys/block/${d:-vda}/queue
echo "discard_max=$(cat "$q/discard_max_bytes")"
echo "write_zeroes_max=$(cat "$q/write_zeroes_max_bytes")"
dd if=/dev/zero of=/trim.bin bs=1M count=16 2>/dev/null && sync && rm /trim.bin && sync
out=$(fstrim -v / 2>&1)
n=$(echo "$out" | sed -n 's/.*: \([0-9]*\) bytes trimmed.*/\1/p')
echo "trim=${n:-$out}"

# One write on a scratch disk (`agent.write=vda`, the default): `write_begin=<disk>`, then
# `agent.token=` padded to 4 KiB written with O_DIRECT at offset 0 (the guest's first write to
# the disk, straight to the device) and read back the same way: `write=ok|fail`,
# `write_read=<the first block, its zero bytes dropped>`.
d=$(param write)
d=${d:-vda}
echo "write_begin=$d"
if printf '%s' "$(param token)" | dd of="/dev/$d" bs=4096 count=1 conv=sync oflag=direct 2>/dev/null; then
  echo "write=ok"
else
  echo "write=fail"
fi
echo "write_read=$(dd if="/dev/$d" bs=4096 count=1 iflag=direct 2>/dev/null | tr -d '\0')"

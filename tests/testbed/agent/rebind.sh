# Unbinds the virtio-pci function of a disk (`agent.rebind=vdb`, the default) from its driver,
# binds it again and reads the disk once more: `rebind=<pci address> <old name> gone=<yes|no>
# <new name>` and `rebind_read=same|differ|fail` (the first MiB, before and after).
d=$(param rebind)
d=${d:-vdb}
pci=$(readlink -f "/sys/block/$d/device/..")
pci=${pci##*/}
sum() { dd if="/dev/$1" bs=65536 count=16 2>/dev/null | sha256sum | cut -c1-16; }
before=$(sum "$d")
echo "$pci" >/sys/bus/pci/drivers/virtio-pci/unbind
gone=yes
[ -e "/sys/block/$d" ] && gone=no
echo "$pci" >/sys/bus/pci/drivers/virtio-pci/bind
new=
i=0
while [ $i -lt 50 ]; do
  new=$(ls "/sys/bus/pci/devices/$pci"/virtio*/block 2>/dev/null)
  [ -n "$new" ] && [ -b "/dev/$new" ] && break
  sleep 0.1
  i=$((i + 1))
done
echo "rebind=$pci $d gone=$gone $new"
if [ -z "$new" ]; then
  echo "rebind_read=fail"
elif [ "$(sum "$new")" = "$before" ]; then
  echo "rebind_read=same"
else
  echo "rebind_read=differ"
fi

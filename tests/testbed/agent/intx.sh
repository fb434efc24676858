# How the virtio functions interrupt: `virtio_irqs=` one `name:chip:hwirq-trigger:count` per
# virtio line of /proc/interrupts, and `msi_vectors=` the MSI/MSI-X vectors of all PCI functions.
echo "virtio_irqs=$(awk '/virtio/ { n = 0; for (i = 2; i <= NF - 3; i++) n += $i
  printf "%s:%s:%s:%d ", $NF, $(NF - 2), $(NF - 1), n }' /proc/interrupts)"
echo "msi_vectors=$(ls /sys/bus/pci/devices/*/msi_irqs/ 2>/dev/null | grep -c '^[0-9]')"

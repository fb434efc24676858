#!/usr/bin/env bash
# Installs what the test suite needs beyond Deno, from Debian's packages:
# binutils (as, ld) and gcc to build guest programs and C baselines (libc6-dev for the static
# ones the test bed's L2 runs),
# linux-libc-dev for the <linux/*.h> the ABI tests compile against (kvm.h, virtio_*.h, vhost.h,
# pci_regs.h, fs.h, falloc.h: one package, so kvm.h stands for all), acpica-tools (iasl,
# acpiexec) to check the ACPI tables, e2fsprogs (mkfs.ext4, e2fsck, debugfs) for the disk
# images of the Linux tests, which use them inside the test bed through the host's /usr,
# bubblewrap (bwrap) to jail device processes and libseccomp2 for their seccomp filters (loaded
# through FFI as libseccomp.so.2), and libseccomp-dev for the <seccomp.h> the seccomp ABI test
# compiles against, and python3 for the crosvm-format control-socket client the control tests
# speak through (and resize2fs, from e2fsprogs, which the disk-resize test runs inside L2), and
# iproute2 (ip) for the network namespaces the virtio-net tests put their TAPs in, and iperf3
# for the network benchmark (in L1 through the host's /usr, in L2 copied with its libraries), and
# fio for the block tests at depth (L2 runs it from a disk that mktoolsdisk.sh builds in L1).
# The test bed's L1 runs the host's bwrap and libseccomp through its /usr.
# Does nothing when everything is present.
set -euo pipefail

missing=()
command -v as >/dev/null || missing+=(binutils)
command -v ld >/dev/null || missing+=(binutils)
command -v gcc >/dev/null || missing+=(gcc)
# glibc's static archive, for the test bed's static guest programs (gcc -static).
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
[ -f /usr/include/linux/kvm.h ] || missing+=(linux-libc-dev)
command -v iasl >/dev/null || missing+=(acpica-tools)
for tool in mkfs.ext4 e2fsck debugfs; do
  [ -x "/usr/sbin/$tool" ] || { missing+=(e2fsprogs) && break; }
done
command -v bwrap >/dev/null || missing+=(bubblewrap)
grep -q 'libseccomp\.so\.2 ' <(/sbin/ldconfig -p) || missing+=(libseccomp2)
[ -f /usr/include/seccomp.h ] || missing+=(libseccomp-dev)
command -v python3 >/dev/null || missing+=(python3)
[ -x /usr/sbin/ip ] || [ -x /usr/bin/ip ] || missing+=(iproute2)
[ -x /usr/sbin/resize2fs ] || missing+=(e2fsprogs)
command -v iperf3 >/dev/null || missing+=(iperf3)
command -v fio >/dev/null || missing+=(fio)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install_test_deps: need ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

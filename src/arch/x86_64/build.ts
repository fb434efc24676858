/**
 * Builds an x86_64 machine from a VM description (crosvm's `Arch::build_vm`): the KVM VM with
 * its TSS, identity map, in-kernel irqchip and PIT; guest RAM around the 32-bit MMIO hole; the
 * PC platform devices at their ports; the virtio functions on bus 0 with their INTx wiring; the
 * ACPI tables, reset vector, kernel, initrd and zero page; and the vCPUs with CPUID, MSRs, FPU,
 * LAPIC and, for the boot vCPU, the 64-bit entry state.
 *
 * @module
 */

import { DeviceManager, type PciPlacement } from "../../devices/manager.ts";
import { ACPI_PM_PORT } from "../../devices/legacy/acpi_pm.ts";
import { Cmos, CMOS_PORT } from "../../devices/legacy/cmos.ts";
import { I8042, I8042_PORT } from "../../devices/legacy/i8042.ts";
import { openSerialPorts } from "../../devices/legacy/serial_ports.ts";
import { PCI_CONFIG_IO_PORT } from "../../devices/pci/config_io.ts";
import type { SerialSpec } from "../../devices/registry.ts";
import type { CpuidEntry, Kvm, VcpuFd, VmFd } from "../../ffi/kvm.ts";
import { close, munmap } from "../../ffi/libc.ts";
import { GuestMemory, HUGE_PAGE_SIZE } from "../../memory.ts";
import { SharedArena } from "../../shared_region.ts";
import type { Machine, MachineDescription, MachineVcpu } from "../machine.ts";
import { MADT_MAX_CPUS } from "./acpi/madt.ts";
import { buildAcpiTables } from "./acpi/tables.ts";
import { loadBootImages, setBootVcpuState } from "./boot/load.ts";
import { RESET_VECTOR_ADDRESS, resetVectorStub } from "./boot/reset_vector.ts";
import { bootMsrs, cpuidForVcpu, setDefaultFpu, setLocalInterrupts } from "./cpu.ts";
import {
  ACPI_GED_GSI,
  COM_PORTS,
  IO_DELAY_PORTS,
  KVM_IDENTITY_MAP_ADDRESS,
  KVM_TSS_ADDRESS,
  MIB,
  PCI_INTX_GSIS,
  PCI_MMIO_32_BASE,
  PCI_MMIO_32_SIZE,
  PCIE_ECAM_BASE,
  PCIE_ECAM_SIZE,
  ramRegions,
} from "./layout.ts";
import { intxGsiForSlot, PciIntxPin } from "./pci_intx.ts";

/**
 * Room for the devices' register blocks after guest RAM: a page or two each (a virtio device's
 * registers, configuration space and MSI-X table), for dozens of devices.
 */
const DEVICE_STATE_BYTES = 1 << 20;

/** The most vCPUs an x86_64 machine of ours describes (one MADT entry each). */
export const MAX_VCPUS = MADT_MAX_CPUS;

/** PCI on an x86_64 machine: mechanism #1 ports, ECAM, the 32-bit hole, INTx through `_PRT`. */
export const PCI_PLACEMENT: PciPlacement = {
  configIoPort: PCI_CONFIG_IO_PORT,
  ecam: { base: PCIE_ECAM_BASE, size: PCIE_ECAM_SIZE },
  barWindow: { base: PCI_MMIO_32_BASE, size: PCI_MMIO_32_SIZE },
  intxGsi: (slot) => intxGsiForSlot(slot, PciIntxPin.INTA, PCI_INTX_GSIS),
};

/**
 * Builds the machine `description` asks for. Every descriptor it opens is registered on
 * `cleanup`, so a failure part-way leaves nothing open.
 */
export function buildMachine(
  kvm: Kvm,
  description: MachineDescription,
  cleanup: DisposableStack,
): Machine {
  const { config } = description;
  const vm = createVm(kvm, cleanup);
  const { sandbox } = description;
  // One arena: guest RAM, then the devices' register blocks; memfd-backed for jailed devices.
  const arena = SharedArena.reserve(config.memMiB * MIB, DEVICE_STATE_BYTES, HUGE_PAGE_SIZE);
  const memory = GuestMemory.inArena(arena, ramRegions(config.memMiB * MIB), sandbox !== null);
  if (memory.fd !== undefined) {
    const fd = memory.fd;
    cleanup.defer(() => close(fd));
  }
  memory.register(vm);

  const devices = new DeviceManager(vm, memory, PCI_PLACEMENT, sandbox, arena);
  cleanup.defer(() => devices.close());
  const serials = openSerialPorts(vm, config.serials, COM_PORTS, cleanup);
  addPlatformDevices(devices, serials.specs, memory);
  for (const { name, backend } of description.virtio) devices.addVirtio(name, backend);

  const cmdline = [
    ...(serials.consolePort ? [`console=ttyS${serials.consolePort - 1}`] : []),
    ...description.params,
  ].join(" ");
  const entry = loadGuest(memory, description, cmdline, config.cpus);
  const vcpus = createVcpus(kvm, vm, config.cpus, entry, cleanup);
  // The Generic Event Device's interrupt is edge-triggered: one rising edge is one press.
  const pressPowerButton = () => {
    vm.irqLine(ACPI_GED_GSI, true);
    vm.irqLine(ACPI_GED_GSI, false);
  };
  return {
    vm,
    memory,
    cmdline,
    devices,
    serials,
    vcpus,
    runSize: kvm.vcpuMmapSize(),
    pressPowerButton,
  };
}

/** The VM with the x86 pieces KVM needs before any vCPU: TSS, identity map, irqchip, PIT. */
function createVm(kvm: Kvm, cleanup: DisposableStack): VmFd {
  const vm = kvm.createVm();
  cleanup.defer(() => vm.close());
  vm.setTssAddress(KVM_TSS_ADDRESS);
  vm.setIdentityMapAddress(KVM_IDENTITY_MAP_ADDRESS);
  vm.createIrqchip();
  vm.createPit2();
  return vm;
}

/** The PC platform: COM ports, i8042, CMOS RTC, ACPI power management, I/O-delay ports. */
function addPlatformDevices(
  devices: DeviceManager,
  serials: readonly SerialSpec[],
  memory: GuestMemory,
): void {
  for (const serial of serials) devices.addPlatform(serial);
  devices.addPlatform({ kind: "i8042", base: I8042_PORT, state: I8042.createState() });
  const lowMemory = memory.regions[0].size;
  devices.addPlatform({
    kind: "cmos",
    base: CMOS_PORT,
    state: Cmos.createState(lowMemory, memory.size - lowMemory),
  });
  devices.addPlatform({ kind: "acpi-pm", base: ACPI_PM_PORT });
  devices.addPlatform({ kind: "absorb", name: "io-delay", ranges: IO_DELAY_PORTS });
}

/** ACPI tables, the reset vector, kernel, initrd and zero page; returns the kernel's entry. */
function loadGuest(
  memory: GuestMemory,
  description: MachineDescription,
  cmdline: string,
  cpus: number,
): number {
  const lastRegion = memory.regions[memory.regions.length - 1];
  const acpi = buildAcpiTables({
    cpus,
    memoryTop: lastRegion.guestAddress + lastRegion.size,
    isa: { serialPorts: COM_PORTS, i8042: true, rtc: true },
  });
  memory.write(acpi.address, acpi.blob);
  memory.write(RESET_VECTOR_ADDRESS, resetVectorStub());
  return loadBootImages(memory, {
    kernel: description.kernel,
    initrd: description.initrd,
    cmdline,
    acpi,
  });
}

/** Creates and sets up every vCPU; the boot vCPU (0) starts at `entry` in 64-bit mode. */
function createVcpus(
  kvm: Kvm,
  vm: VmFd,
  cpus: number,
  entry: number,
  cleanup: DisposableStack,
): MachineVcpu[] {
  const runSize = kvm.vcpuMmapSize();
  const supportedCpuid = kvm.supportedCpuid();
  return Array.from({ length: cpus }, (_, id) => {
    const fd = vm.createVcpu(id);
    cleanup.defer(() => fd.close());
    const runAddress = fd.mapRun(runSize);
    cleanup.defer(() => munmap(runAddress, runSize));
    setUpVcpu(fd, supportedCpuid, id, cpus);
    if (id === 0) setBootVcpuState(fd, entry);
    return { fd, runAddress };
  });
}

/** Per-vCPU CPUID (APIC ID and topology), boot MSRs, default FPU, LINT0/LINT1 wiring. */
function setUpVcpu(
  fd: VcpuFd,
  supportedCpuid: CpuidEntry[],
  id: number,
  cpus: number,
): void {
  fd.setCpuid(cpuidForVcpu(supportedCpuid, id, cpus));
  fd.setMsrs(bootMsrs());
  setDefaultFpu(fd);
  setLocalInterrupts(fd);
}

/**
 * The DSDT (ACPI 6.5 §5.2.11.1): the `\_S5` sleep package, the PCI Express host bridge with its
 * resource windows, the power button and the Generic Event Device that presses it, a
 * motherboard-resources device that reserves the ECAM window and the PM ports, and the legacy
 * ISA devices.
 *
 * A hardware-reduced platform has no fixed power button: the button is a control-method device
 * (PNP0C0C) and the Generic Event Device (ACPI0013, §5.6.9) turns an interrupt into a `Notify`
 * of it. Linux's `evged` driver runs `GED0._EVT` on {@link ACPI_GED_GSI}, whose only event is
 * the button; its `button` driver then reports KEY_POWER.
 *
 * The ISA devices matter because the FADT declares a hardware-reduced platform: Linux then runs
 * without the 8259 PIC (arch/x86/kernel/acpi/boot.c, `acpi_generic_reduced_hw_init`), so ISA
 * IRQs are no longer identity-mapped and a legacy device gets its interrupt only from a `_CRS`
 * here. Without a COM port device, opening `/dev/ttyS0` fails for want of IRQ 4.
 *
 * The host bridge's `_PRT` likewise gives every INTx pin on bus 0 its IOAPIC GSI, so that a guest
 * without MSI-X (`pci=nomsi`) can still take a virtio function's INTA#.
 *
 * @module
 */

import { ACPI_PM_PORT, ACPI_PM_PORT_COUNT, S5_SLP_TYP } from "../../../devices/legacy/acpi_pm.ts";
import {
  ACPI_GED_GSI,
  FIRST_ADDR_PAST_32BITS,
  PCI_MMIO_32_BASE,
  PCI_MMIO_32_SIZE,
  PCI_MMIO_64_ALIGNMENT,
  PCI_MMIO_64_SIZE,
  PCIE_ECAM_BASE,
  PCIE_ECAM_SIZE,
} from "../layout.ts";
import {
  type Aml,
  concat,
  device,
  dwordMemory,
  eisaId,
  extendedInterrupt,
  integer,
  io,
  irq,
  MemoryCaching,
  method,
  name,
  notify,
  pkg,
  qwordMemory,
  type ResourceDescriptor,
  resourceTemplate,
  scope,
  string,
  wordBusNumber,
  wordIo,
} from "./aml.ts";
import { intxGsiForSlot, PCI_INTX_PIN_COUNT } from "../pci_intx.ts";
import { sdt } from "./sdt.ts";
import { CMOS_PORT, CMOS_PORT_COUNT } from "../../../devices/legacy/cmos.ts";
import { I8042_PORT, I8042_PORT_COUNT } from "../../../devices/legacy/i8042.ts";
import { PCI_CONFIG_IO_PORT, PCI_CONFIG_IO_PORT_COUNT } from "../../../devices/pci/config_io.ts";
import { DEVICES_PER_BUS } from "../../../devices/pci/root.ts";
import { UART_REGISTER_COUNT } from "../../../devices/legacy/serial.ts";

/** DSDT revision 2: 64-bit AML integers (ACPI 6.5 §5.2.11.1). */
export const DSDT_REVISION = 2;

/** Bus numbers behind the host bridge: all of segment 0, as the ECAM window covers. */
export const PCI_BUS_FIRST = 0;
/** Last bus number (one ECAM MiB per bus, PCI Express Base 6.0 §7.2.2). */
export const PCI_BUS_LAST = PCIE_ECAM_SIZE / (1 << 20) - 1;
/** The whole 16-bit I/O space, split around the configuration ports. */
const IO_SPACE_LAST = 0xffff;
/** First port after the configuration ports' 0xD00 boundary, where PCI I/O BARs may go. */
const PCI_IO_AFTER_CONFIG = 0xd00;

/**
 * A PCI device's address on its bus as `_ADR` and `_PRT` write it (ACPI 6.5 §6.1.1, table "ADR
 * Object Address Encodings"): the device number in the high word, the function in the low word.
 */
const PCI_ADR_DEVICE_SHIFT = 16;
/** §6.1.1: function 0xFFFF stands for all functions of the device, as `_PRT` entries need. */
const PCI_ADR_ALL_FUNCTIONS = 0xffff;
/**
 * ACPI 6.5 §6.2.13 (`_PRT`), Source field: the integer zero says there is no link device and the
 * Source Index is the global system interrupt itself.
 */
const PRT_SOURCE_GLOBAL_INTERRUPT = 0;

/** PNP IDs, from Microsoft's registry of "PNP" IDs (uefi.org/PNP_ACPI_Registry). */
const PNP = {
  PCI_EXPRESS_ROOT: "PNP0A08",
  PCI_ROOT: "PNP0A03",
  MOTHERBOARD_RESOURCES: "PNP0C02",
  POWER_BUTTON: "PNP0C0C",
  UART_16550A: "PNP0501",
  PS2_KEYBOARD: "PNP0303",
  AT_RTC: "PNP0B00",
} as const;

/** ACPI 6.5 §5.6.9: the Generic Event Device's `_HID`, an ACPI ID rather than a PNP one. */
const GENERIC_EVENT_DEVICE_HID = "ACPI0013";
/** ACPI 6.5 §5.6.6, table "Device Object Notification Values": 0x80 tells a button it was pressed. */
const NOTIFY_BUTTON_PRESSED = 0x80;

/** The keyboard's ISA IRQ (IBM PC/AT). */
const I8042_KEYBOARD_IRQ = 1;
/** The 8042's status/command port, the last of its range. */
const I8042_COMMAND_PORT = I8042_PORT + I8042_PORT_COUNT - 1;

/** One COM port: its I/O base and ISA IRQ. */
export interface SerialPortResources {
  /** First I/O port, e.g. 0x3F8. */
  base: number;
  /** ISA IRQ, e.g. 4. */
  irq: number;
}

/** The legacy ISA devices to describe, so that a hardware-reduced guest can find their IRQs. */
export interface IsaDevices {
  /** COM ports, named COM1… in this order. */
  serialPorts?: readonly SerialPortResources[];
  /** The i8042 keyboard controller at 0x60/0x64 with IRQ 1. */
  i8042?: boolean;
  /** The CMOS RTC at 0x70–0x71, without an IRQ (our CMOS raises none). */
  rtc?: boolean;
}

/** What the DSDT describes. */
export interface DsdtOptions {
  /** First address past the highest RAM: the 64-bit PCI window starts above it. */
  memoryTop: number;
  /** Legacy devices present in the VM. */
  isa?: IsaDevices;
}

/** A guest-physical range. */
export interface AddressWindow {
  /** First address. */
  base: number;
  /** Size in bytes. */
  size: number;
}

/**
 * The host bridge's 64-bit memory window: {@link PCI_MMIO_64_SIZE} bytes from the first
 * {@link PCI_MMIO_64_ALIGNMENT} boundary at or above both 4 GiB and the top of RAM.
 */
export function pciMmio64Window(memoryTop: number): AddressWindow {
  const floor = Math.max(FIRST_ADDR_PAST_32BITS, memoryTop);
  const base = Math.ceil(floor / PCI_MMIO_64_ALIGNMENT) * PCI_MMIO_64_ALIGNMENT;
  return { base, size: PCI_MMIO_64_SIZE };
}

const lastOf = (w: AddressWindow) => w.base + w.size - 1;

/**
 * `_PRT` (ACPI 6.5 §6.2.13) for bus 0: for every device 0–31 and pin INTA#–INTD#, the package
 * `{Address, Pin, Source, Source Index}` = `{(device << 16) | 0xFFFF, pin, 0, GSI}`, with the GSI
 * from {@link intxGsiForSlot}, the same function that wires the VMM's INTx irqfds.
 *
 * A GSI named without a link device is level-triggered and active-low to the OS, as PCI INTx#
 * signals are (Linux: `acpi_pci_irq_enable` in drivers/acpi/pci_irq.c), so the guest programs its
 * IOAPIC entries active-low. That suits our irqfds: KVM's IOAPIC keeps the polarity bit only to
 * read it back and takes the irqfd's level as the logical assertion (`ioapic_set_irq` in
 * arch/x86/kvm/ioapic.c since Linux commit 100943c54e09, "kvm: x86: ignore ioapic polarity",
 * which KVM advertises as `KVM_CAP_IOAPIC_POLARITY_IGNORED`).
 */
function pciRoutingTable(): Aml {
  const entries: Aml[] = [];
  for (let device = 0; device < DEVICES_PER_BUS; device++) {
    for (let pin = 0; pin < PCI_INTX_PIN_COUNT; pin++) {
      entries.push(pkg([
        integer((device << PCI_ADR_DEVICE_SHIFT) | PCI_ADR_ALL_FUNCTIONS),
        integer(pin),
        integer(PRT_SOURCE_GLOBAL_INTERRUPT),
        integer(intxGsiForSlot(device, pin)),
      ]));
    }
  }
  return name("_PRT", pkg(entries));
}

/** `\_SB_.PCI0`: the PCI Express root bridge of segment 0 (ACPI 6.5 §6.5.5, §6.5.6). */
function pciHostBridge(memoryTop: number): Aml {
  const mmio32 = { base: PCI_MMIO_32_BASE, size: PCI_MMIO_32_SIZE };
  const mmio64 = pciMmio64Window(memoryTop);
  return device("PCI0", [
    name("_HID", eisaId(PNP.PCI_EXPRESS_ROOT)),
    name("_CID", eisaId(PNP.PCI_ROOT)),
    name("_SEG", integer(0)),
    name("_UID", integer(0)),
    name("_BBN", integer(PCI_BUS_FIRST)),
    name(
      "_CRS",
      resourceTemplate([
        wordBusNumber({ min: PCI_BUS_FIRST, max: PCI_BUS_LAST }),
        io(PCI_CONFIG_IO_PORT, PCI_CONFIG_IO_PORT_COUNT),
        wordIo({ min: 0, max: PCI_CONFIG_IO_PORT - 1 }),
        wordIo({ min: PCI_IO_AFTER_CONFIG, max: IO_SPACE_LAST }),
        dwordMemory({ min: mmio32.base, max: lastOf(mmio32) }),
        qwordMemory({ min: mmio64.base, max: lastOf(mmio64), caching: MemoryCaching.CACHEABLE }),
      ]),
    ),
    pciRoutingTable(),
  ]);
}

/**
 * `\_SB_.MBRD`: motherboard resources (PNP0C02) that no other device claims: the ECAM window,
 * which Linux wants reserved here before it trusts MCFG (arch/x86/pci/mmconfig-shared.c), and
 * the ACPI PM ports.
 */
function motherboardResources(): Aml {
  const ecam = { base: PCIE_ECAM_BASE, size: PCIE_ECAM_SIZE };
  return device("MBRD", [
    name("_HID", eisaId(PNP.MOTHERBOARD_RESOURCES)),
    name("_UID", integer(0)),
    name(
      "_CRS",
      resourceTemplate([
        dwordMemory({ min: ecam.base, max: lastOf(ecam), consumer: true }),
        io(ACPI_PM_PORT, ACPI_PM_PORT_COUNT),
      ]),
    ),
  ]);
}

/** `\_SB_.PWRB`: the control-method power button (ACPI 6.5 §4.8.2.2.1, Power Button). */
function powerButton(): Aml {
  return device("PWRB", [name("_HID", eisaId(PNP.POWER_BUTTON)), name("_UID", integer(0))]);
}

/**
 * `\_SB_.GED0`: a Generic Event Device (ACPI 6.5 §5.6.9) on {@link ACPI_GED_GSI}, edge-triggered;
 * its `_EVT` tells the power button it was pressed (§5.6.6, Device Object Notification value 0x80
 * for a button: "the button was pressed").
 */
function genericEventDevice(): Aml {
  return device("GED0", [
    name("_HID", string(GENERIC_EVENT_DEVICE_HID)),
    name("_UID", integer(0)),
    name("_CRS", resourceTemplate([extendedInterrupt([ACPI_GED_GSI], { edge: true })])),
    method("_EVT", 1, [notify("\\_SB.PWRB", NOTIFY_BUTTON_PRESSED)]),
  ]);
}

/** An ISA device with a PNP ID, a `_UID` and fixed resources. */
function isaDevice(
  path: string,
  hid: string,
  uid: number,
  resources: readonly ResourceDescriptor[],
): Aml {
  return device(path, [
    name("_HID", eisaId(hid)),
    name("_UID", integer(uid)),
    name("_CRS", resourceTemplate(resources)),
  ]);
}

/** The ISA devices, as `\_SB_` children. A COM port's IRQ is marked shared if another uses it. */
function isaDevices(isa: IsaDevices): Aml[] {
  const serials = isa.serialPorts ?? [];
  const out = serials.map((port, i) => {
    const shared = serials.some((other) => other !== port && other.irq === port.irq);
    return isaDevice(`COM${i + 1}`, PNP.UART_16550A, i + 1, [
      io(port.base, UART_REGISTER_COUNT),
      irq([port.irq], shared),
    ]);
  });
  if (isa.i8042) {
    out.push(isaDevice("KBD", PNP.PS2_KEYBOARD, 0, [
      io(I8042_PORT, 1),
      io(I8042_COMMAND_PORT, 1),
      irq([I8042_KEYBOARD_IRQ]),
    ]));
  }
  if (isa.rtc) out.push(isaDevice("RTC", PNP.AT_RTC, 0, [io(CMOS_PORT, CMOS_PORT_COUNT)]));
  return out;
}

/**
 * `\_S5_`: the soft-off state's package (ACPI 6.5 §7.4.2): SLP_TYPa, SLP_TYPb, two reserved.
 * Only the first value is used on a hardware-reduced platform.
 */
function s5Package(): Aml {
  return name("\\_S5", pkg([integer(S5_SLP_TYP), integer(0), integer(0), integer(0)]));
}

/** Builds the whole DSDT table. */
export function buildDsdt(opts: DsdtOptions): Uint8Array {
  const body = concat([
    s5Package(),
    scope("\\_SB", [
      pciHostBridge(opts.memoryTop),
      motherboardResources(),
      powerButton(),
      genericEventDevice(),
      ...isaDevices(opts.isa ?? {}),
    ]),
  ]);
  return sdt("DSDT", DSDT_REVISION, body);
}

/**
 * Device specs: structured-cloneable descriptions of the VM's bus devices, from which each
 * thread (every vCPU Worker, and the main thread) builds its own device objects over the same
 * shared state. A spec says where its device sits (the device manager decided that); building
 * buses from specs places nothing itself.
 *
 * Adding a bus device kind: a spec interface here, a case in {@link buildBuses}.
 *
 * @module
 */

import { Bus } from "../bus.ts";
import { writeAll } from "../ffi/libc.ts";
import { IrqfdLine } from "../irq.ts";
import { AbsorbDevice } from "./legacy/absorb.ts";
import { ACPI_PM_PORT_COUNT, AcpiPm } from "./legacy/acpi_pm.ts";
import { Cmos, CMOS_PORT_COUNT } from "./legacy/cmos.ts";
import type { DeviceContext } from "./context.ts";
import type { BusDevice } from "../bus.ts";
import { I8042, I8042_PORT_COUNT } from "./legacy/i8042.ts";
import { PciBarWindow } from "./pci/bar_window.ts";
import { PCI_CONFIG_IO_PORT_COUNT, PciConfigIo } from "./pci/config_io.ts";
import { PciEcam } from "./pci/ecam.ts";
import { PciRoot } from "./pci/root.ts";
import { Serial, UART_REGISTER_COUNT } from "./legacy/serial.ts";
import type { VirtioPciSpec } from "./virtio/transport/pci/state.ts";
import { buildVirtioPci } from "./virtio/transport/pci/transport.ts";

/** A 16550A UART. */
export interface SerialSpec {
  kind: "serial";
  /** Name for logs, e.g. `COM1`. */
  name: string;
  /** First I/O port. */
  base: number;
  /** From `Serial.createState()`. */
  state: SharedArrayBuffer;
  /** irqfd eventfd for its IRQ line. */
  irqFd: number;
  /** Where output goes, or -1 for nowhere. */
  outFd: number;
}

/** The i8042 keyboard controller (reset line). */
export interface I8042Spec {
  kind: "i8042";
  /** First I/O port. */
  base: number;
  /** From `I8042.createState()`. */
  state: SharedArrayBuffer;
}

/** The CMOS RTC. */
export interface CmosSpec {
  kind: "cmos";
  /** First I/O port (the index register). */
  base: number;
  /** From `Cmos.createState()`. */
  state: SharedArrayBuffer;
}

/** The PCI root: config mechanism #1 ports and the ECAM window. */
export interface PciSpec {
  kind: "pci";
  /** First I/O port of configuration mechanism #1 (CONFIG_ADDRESS). */
  configIoPort: number;
  /** From `PciConfigIo.createState()`. */
  state: SharedArrayBuffer;
  /** ECAM window base and size. */
  ecamBase: number;
  ecamSize: number;
  /** The 32-bit BAR window: one MMIO range that dispatches to whichever BAR decodes there. */
  barWindowBase: number;
  barWindowSize: number;
}

/** Ports that are read as idle and written to no effect. */
export interface AbsorbSpec {
  kind: "absorb";
  name: string;
  /** `[base, length]` port ranges. */
  ranges: [number, number][];
}

/** The ACPI sleep control, sleep status and reset registers (stateless). */
export interface AcpiPmSpec {
  kind: "acpi-pm";
  /** First I/O port (the sleep control register). */
  base: number;
}

/** Any device spec. */
export type DeviceSpec =
  | SerialSpec
  | I8042Spec
  | CmosSpec
  | PciSpec
  | AbsorbSpec
  | AcpiPmSpec
  | VirtioPciSpec;

/** The PIO and MMIO buses of one thread. */
export interface Buses {
  pio: Bus;
  mmio: Bus;
}

/** Builds one thread's buses from the VM's device specs. */
export function buildBuses(specs: readonly DeviceSpec[], ctx: DeviceContext): Buses {
  const pio = new Bus("pio");
  const mmio = new Bus("mmio");
  const add = (bus: Bus, device: BusDevice, base: number, length: number) =>
    bus.insert(device, base, length);
  let pci: { root: PciRoot; bars: PciBarWindow } | undefined;
  for (const spec of specs) {
    switch (spec.kind) {
      case "serial":
        add(pio, buildSerial(spec), spec.base, UART_REGISTER_COUNT);
        break;
      case "i8042":
        add(pio, new I8042("i8042", spec.state, ctx), spec.base, I8042_PORT_COUNT);
        break;
      case "cmos":
        add(pio, new Cmos("cmos", spec.state), spec.base, CMOS_PORT_COUNT);
        break;
      case "pci": {
        const root = new PciRoot();
        const bars = new PciBarWindow("pci-bars", spec.barWindowBase);
        pci = { root, bars };
        add(
          pio,
          new PciConfigIo("pci-config", spec.state, root),
          spec.configIoPort,
          PCI_CONFIG_IO_PORT_COUNT,
        );
        add(mmio, new PciEcam("pci-ecam", root), spec.ecamBase, spec.ecamSize);
        add(mmio, bars, spec.barWindowBase, spec.barWindowSize);
        break;
      }
      case "virtio-pci": {
        if (pci === undefined) throw new Error(`${spec.name}: the PCI root must come first`);
        const fn = buildVirtioPci(spec);
        pci.root.add(spec.devfn, fn);
        pci.bars.add(fn);
        break;
      }
      case "acpi-pm":
        add(pio, new AcpiPm("acpi-pm", ctx), spec.base, ACPI_PM_PORT_COUNT);
        break;
      case "absorb": {
        const device = new AbsorbDevice(spec.name);
        for (const [base, length] of spec.ranges) add(pio, device, base, length);
        break;
      }
    }
  }
  return { pio, mmio };
}

/** Builds a Serial from its spec (also used by the main thread to feed it input). */
export function buildSerial(spec: SerialSpec): Serial {
  const output = spec.outFd < 0 ? null : (bytes: Uint8Array) => writeAll(spec.outFd, bytes);
  return new Serial(spec.name, spec.state, new IrqfdLine(spec.irqFd), output);
}

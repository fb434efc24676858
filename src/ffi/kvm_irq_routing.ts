/**
 * GSI routing and level-triggered irqfds (`<linux/kvm.h>`, x86_64): the `KVM_SET_GSI_ROUTING`
 * table that maps each GSI to an irqchip pin or an MSI message, KVM's own default table, and
 * `KVM_IRQFD` with a resample eventfd.
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so every submission carries the default irqchip
 * routes too ({@link defaultIrqchipRoutes}).
 *
 * @module
 */

import { _IOW } from "./ioctl.ts";
import {
  Ioctl,
  KVM_IRQFD_ARGS,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVMIO,
  type StructLayout,
} from "./kvm_abi.ts";
import { ioctlBuf } from "./libc.ts";
import { StructBuffer } from "./struct.ts";

/** `struct kvm_irq_routing`: header of the variable-length route table. */
export const KVM_IRQ_ROUTING = {
  name: "kvm_irq_routing",
  size: 8,
  fields: { nr: 0, flags: 4, entries: 8 },
} as const satisfies StructLayout;

/** `struct kvm_irq_routing_entry`: one route (the union `u` is 32 bytes). */
export const KVM_IRQ_ROUTING_ENTRY = {
  name: "kvm_irq_routing_entry",
  size: 48,
  fields: {
    gsi: 0,
    type: 4,
    flags: 8,
    pad: 12,
    "u.irqchip.irqchip": 16,
    "u.irqchip.pin": 20,
    "u.msi.address_lo": 16,
    "u.msi.address_hi": 20,
    "u.msi.data": 24,
    "u.msi.devid": 28,
  },
} as const satisfies StructLayout;

/** `KVM_SET_GSI_ROUTING`: `_IOW(KVMIO, 0x6a, struct kvm_irq_routing)`. */
export const KVM_SET_GSI_ROUTING = _IOW(KVMIO, 0x6a, KVM_IRQ_ROUTING.size);

/** `kvm_irq_routing_entry.type`: the GSI drives a pin of an in-kernel irqchip. */
export const KVM_IRQ_ROUTING_IRQCHIP = 1;
/** `kvm_irq_routing_entry.type`: the GSI sends an MSI message to the local APICs. */
export const KVM_IRQ_ROUTING_MSI = 2;

/** `kvm_irq_routing_irqchip.irqchip` (`<asm/kvm.h>`): the master 8259 PIC. */
export const KVM_IRQCHIP_PIC_MASTER = 0;
/** The slave 8259 PIC. */
export const KVM_IRQCHIP_PIC_SLAVE = 1;
/** The IOAPIC. */
export const KVM_IRQCHIP_IOAPIC = 2;

/** `KVM_CAP_IRQ_ROUTING`: KVM_SET_GSI_ROUTING exists (the value is the table's capacity). */
export const KVM_CAP_IRQ_ROUTING = 25;
/** `KVM_CAP_IRQFD_RESAMPLE`: KVM_IRQFD accepts KVM_IRQFD_FLAG_RESAMPLE. */
export const KVM_CAP_IRQFD_RESAMPLE = 82;
/** `kvm_irqfd.flags`: the irqfd is a level; `resamplefd` fires when the guest EOIs it. */
export const KVM_IRQFD_FLAG_RESAMPLE = 1 << 1;

/** IOAPIC pins KVM emulates (`KVM_IOAPIC_NUM_PINS`): GSIs 0–23 reach it. */
export const KVM_IOAPIC_NUM_PINS = 24;
/** GSIs 0–15 also reach the 8259 pair (`PIC_NUM_PINS` × 2 in KVM's default table). */
const PIC_GSI_COUNT = 16;
/** Pins per 8259: GSI n is pin n % 8 of the master (n < 8) or the slave. */
const PIC_PINS = 8;

/** A route from a GSI to an irqchip pin. */
export interface IrqchipRoute {
  /** The GSI routed. */
  readonly gsi: number;
  /** KVM_IRQ_ROUTING_IRQCHIP. */
  readonly type: "irqchip";
  /** {@link KVM_IRQCHIP_PIC_MASTER}, {@link KVM_IRQCHIP_PIC_SLAVE} or {@link KVM_IRQCHIP_IOAPIC}. */
  readonly irqchip: number;
  /** The pin on that chip. */
  readonly pin: number;
}

/** An MSI message (PCI Local Bus 3.0 §6.8.1: a DWORD write of `data` to `address`). */
export interface MsiMessage {
  /** Low 32 bits of the message address (0xFEExxxxx on x86). */
  readonly addressLo: number;
  /** High 32 bits of the message address. */
  readonly addressHi: number;
  /** Message data. */
  readonly data: number;
}

/** A route from a GSI to an MSI message. */
export interface MsiRoute extends MsiMessage {
  /** The GSI routed. */
  readonly gsi: number;
  /** KVM_IRQ_ROUTING_MSI. */
  readonly type: "msi";
}

/** One entry of the GSI routing table. */
export type IrqRoute = IrqchipRoute | MsiRoute;

/**
 * KVM's default table, as `kvm_setup_default_irq_routing` installs it with the irqchip
 * (arch/x86/kvm/irq_comm.c, `default_routing`): GSI n → IOAPIC pin n for n < 24, and for
 * n < 16 also → pin n % 8 of the master (n < 8) or slave 8259, GSI 2 included.
 */
export function defaultIrqchipRoutes(): IrqchipRoute[] {
  const routes: IrqchipRoute[] = [];
  for (let gsi = 0; gsi < KVM_IOAPIC_NUM_PINS; gsi++) {
    routes.push({ gsi, type: "irqchip", irqchip: KVM_IRQCHIP_IOAPIC, pin: gsi });
    if (gsi < PIC_GSI_COUNT) {
      const irqchip = gsi < PIC_PINS ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      routes.push({ gsi, type: "irqchip", irqchip, pin: gsi % PIC_PINS });
    }
  }
  return routes;
}

/** Encodes `routes` as a `struct kvm_irq_routing` with its entries. */
function encodeIrqRouting(routes: readonly IrqRoute[]): Uint8Array {
  const table = new StructBuffer(KVM_IRQ_ROUTING, routes.length * KVM_IRQ_ROUTING_ENTRY.size);
  table.setU32("nr", routes.length);
  const at = KVM_IRQ_ROUTING_ENTRY.fields;
  routes.forEach((route, i) => {
    const base = KVM_IRQ_ROUTING.fields.entries + i * KVM_IRQ_ROUTING_ENTRY.size;
    const set = (offset: number, value: number) =>
      table.view.setUint32(base + offset, value >>> 0, true);
    set(at.gsi, route.gsi);
    if (route.type === "irqchip") {
      set(at.type, KVM_IRQ_ROUTING_IRQCHIP);
      set(at["u.irqchip.irqchip"], route.irqchip);
      set(at["u.irqchip.pin"], route.pin);
    } else {
      set(at.type, KVM_IRQ_ROUTING_MSI);
      set(at["u.msi.address_lo"], route.addressLo);
      set(at["u.msi.address_hi"], route.addressHi);
      set(at["u.msi.data"], route.data);
    }
  });
  return table.bytes;
}

/** KVM_SET_GSI_ROUTING on VM fd `vmFd`: replaces the whole routing table with `routes`. */
export function setGsiRouting(vmFd: number, routes: readonly IrqRoute[]): void {
  ioctlBuf(vmFd, KVM_SET_GSI_ROUTING, encodeIrqRouting(routes), "KVM_SET_GSI_ROUTING");
}

/** KVM_IRQFD on VM fd `vmFd`: a write to eventfd `fd` pulses GSI `gsi`; `deassign` unbinds it. */
export function irqfd(vmFd: number, fd: number, gsi: number, deassign = false): void {
  const arg = new StructBuffer(KVM_IRQFD_ARGS);
  arg.setU32("fd", fd);
  arg.setU32("gsi", gsi);
  arg.setU32("flags", deassign ? KVM_IRQFD_FLAG_DEASSIGN : 0);
  ioctlBuf(vmFd, Ioctl.KVM_IRQFD, arg.bytes, "KVM_IRQFD");
}

/**
 * KVM_IRQFD with KVM_IRQFD_FLAG_RESAMPLE: a write to `fd` raises GSI `gsi` as a level that stays
 * up until the guest EOIs it; KVM then lowers it and signals `resampleFd`, and the device raises
 * it again if its interrupt is still pending. `deassign` removes the binding.
 */
export function irqfdResample(
  vmFd: number,
  fd: number,
  gsi: number,
  resampleFd: number,
  deassign = false,
): void {
  const arg = new StructBuffer(KVM_IRQFD_ARGS);
  arg.setU32("fd", fd);
  arg.setU32("gsi", gsi);
  arg.setU32("flags", deassign ? KVM_IRQFD_FLAG_DEASSIGN : KVM_IRQFD_FLAG_RESAMPLE);
  arg.setU32("resamplefd", resampleFd);
  ioctlBuf(vmFd, Ioctl.KVM_IRQFD, arg.bytes, "KVM_IRQFD");
}

/**
 * What an architecture's machine builder takes and gives back, independent of the architecture:
 * a {@link MachineDescription} (the configuration plus the host resources already opened: disk
 * images, kernel and initrd files) in, a {@link Machine} (KVM VM, RAM, devices, vCPUs) out.
 * The VM lifecycle (`src/vm/vm.ts`) runs whatever `Machine` it is handed.
 *
 * @module
 */

import type { VmConfig } from "../config.ts";
import type { SerialPorts } from "../devices/legacy/serial_ports.ts";
import type { DeviceManager, DeviceSandbox } from "../devices/manager.ts";
import type { BackendSpec } from "../devices/virtio/kinds.ts";
import type { VcpuFd, VmFd } from "../ffi/kvm.ts";
import type { GuestMemory } from "../memory.ts";

/**
 * A kernel or initrd image, read a part at a time straight to where the part goes (guest RAM),
 * so that a 50 MB vmlinux is never a 50 MB buffer too.
 */
export interface BootImage {
  /** Its path, for messages. */
  readonly path: string;
  /** Its size in bytes. */
  readonly size: number;
  /** Fills `into` with the image's bytes from `offset` on (the caller keeps within `size`). */
  read(offset: number, into: Uint8Array): void;
}

/** A virtio device to place on the machine, in the order the guest should find it. */
export interface VirtioDeviceRequest {
  /** For logs and errors, e.g. `virtio-blk-vda`. */
  readonly name: string;
  /** The device type and its options (with the descriptors it was given). */
  readonly backend: BackendSpec;
}

/** Everything a machine builder needs: checked configuration and opened host resources. */
export interface MachineDescription {
  /** The VM's configuration. */
  readonly config: VmConfig;
  /** The kernel image. */
  readonly kernel: BootImage;
  /** The initial ramdisk, if any. */
  readonly initrd?: BootImage;
  /** Kernel parameters from the devices and the user, in order (the architecture adds its own). */
  readonly params: readonly string[];
  /** The virtio devices, in slot order. */
  readonly virtio: readonly VirtioDeviceRequest[];
  /** How to jail the virtio devices, or null to run them in Workers of the VMM. */
  readonly sandbox: DeviceSandbox | null;
}

/** One vCPU, created and set up, not yet running. */
export interface MachineVcpu {
  /** Its KVM fd. */
  readonly fd: VcpuFd;
  /** Host address of its `kvm_run` mapping. */
  readonly runAddress: bigint;
}

/** A machine ready to run. */
export interface Machine {
  /** The KVM VM. */
  readonly vm: VmFd;
  /** Guest RAM. */
  readonly memory: GuestMemory;
  /** The full kernel command line the guest was given. */
  readonly cmdline: string;
  /** Every device, and the runners of the virtio ones. */
  readonly devices: DeviceManager;
  /** The serial ports: stdin's port, the output stream. */
  readonly serials: SerialPorts;
  /** The vCPUs, boot vCPU first. */
  readonly vcpus: readonly MachineVcpu[];
  /** Size of each `kvm_run` mapping. */
  readonly runSize: number;
  /** Presses the power button: the guest's ACPI is told (x86_64: the DSDT's GED0). */
  readonly pressPowerButton: () => void;
}

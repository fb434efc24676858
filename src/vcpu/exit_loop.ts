/**
 * The KVM_RUN loop of one vCPU: runs the guest, decodes each exit from typed-array
 * views over `kvm_run`, and dispatches port and MMIO accesses to the buses inline.
 *
 * @module
 */

import type { Buses } from "../devices/registry.ts";
import { Errno, SyscallError } from "../ffi/errno.ts";
import { getSegment, type VcpuFd } from "../ffi/kvm.ts";
import { Exit, KVM_EXIT_IO_OUT, KVM_RUN_LAYOUT, SystemEvent } from "../ffi/kvm_abi.ts";
import * as log from "../log.ts";
import type { VmControl } from "./control.ts";
import { NO_DEVICE_BYTE } from "../devices/access.ts";
import type { VcpuStats } from "./protocol.ts";

const RUN = KVM_RUN_LAYOUT.fields;
/** Why {@link ExitLoop.run} returned. */
export interface LoopResult {
  /** Set when the vCPU hit something the VMM cannot continue from. */
  error?: string;
  /** Counters. */
  stats: VcpuStats;
}

/** Runs one vCPU until the VM is asked to stop. */
export class ExitLoop {
  readonly #run: Uint8Array;
  readonly #view: DataView;
  /** Views of `kvm_run.mmio.data` by access length, made once instead of per exit. */
  readonly #mmioData: Uint8Array[];
  readonly #stats: VcpuStats = { pioExits: 0, mmioExits: 0, firstRunAt: 0, endedAt: 0 };

  /**
   * @param vcpu the vCPU
   * @param run an ArrayBuffer over the vCPU's `kvm_run` mapping
   * @param buses this thread's buses
   * @param control the VM's run control
   */
  constructor(
    private readonly vcpu: VcpuFd,
    run: ArrayBuffer,
    private readonly buses: Buses,
    private readonly control: VmControl,
  ) {
    this.#run = new Uint8Array(run);
    this.#view = new DataView(run);
    this.#mmioData = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((length) =>
      this.#run.subarray(RUN["mmio.data"], RUN["mmio.data"] + length)
    );
  }

  /**
   * Runs until a stop is requested (by a device, the guest, another vCPU or the host), parking
   * out of KVM_RUN while a suspend lasts.
   */
  run(): LoopResult {
    this.#stats.firstRunAt = performance.timeOrigin + performance.now();
    let error: string | undefined;
    const enterGuest = this.vcpu.runner();
    while (!this.control.stopRequested) {
      if (this.control.pauseRequested) {
        this.control.park();
        continue;
      }
      const errno = enterGuest();
      if (errno === Errno.EINTR || errno === Errno.EAGAIN) {
        // A kick: the next entry must run the guest again unless the loop is told otherwise
        // (the kicker set its request before immediate_exit, so the checks above see it).
        this.#run[RUN.immediate_exit] = 0;
        continue;
      }
      if (errno !== 0) {
        error = `vcpu${this.vcpu.id}: ${new SyscallError("ioctl(KVM_RUN)", errno).message}`;
        break;
      }
      error = this.#handleExit();
      if (error !== undefined) break;
    }
    if (error !== undefined) this.control.requestExit("error");
    this.#stats.endedAt = performance.timeOrigin + performance.now();
    return { error, stats: this.#stats };
  }

  /** Handles the exit in `kvm_run`; returns an error description when the VM cannot go on. */
  #handleExit(): string | undefined {
    const reason = this.#view.getUint32(RUN.exit_reason, true);
    switch (reason) {
      case Exit.KVM_EXIT_IO:
        this.#stats.pioExits++;
        this.#handleIo();
        return;
      case Exit.KVM_EXIT_MMIO:
        this.#stats.mmioExits++;
        this.#handleMmio();
        return;
      case Exit.KVM_EXIT_INTR:
        return;
      case Exit.KVM_EXIT_HLT:
        this.control.requestExit("halt");
        return;
      case Exit.KVM_EXIT_SHUTDOWN:
        this.control.requestExit("triple-fault");
        return;
      case Exit.KVM_EXIT_SYSTEM_EVENT:
        this.#handleSystemEvent();
        return;
      case Exit.KVM_EXIT_FAIL_ENTRY: {
        const why = this.#view.getBigUint64(RUN["fail_entry.hardware_entry_failure_reason"], true);
        return this.#describe(`KVM_EXIT_FAIL_ENTRY (hardware reason 0x${why.toString(16)})`);
      }
      case Exit.KVM_EXIT_INTERNAL_ERROR: {
        const sub = this.#view.getUint32(RUN["internal.suberror"], true);
        return this.#describe(`KVM_EXIT_INTERNAL_ERROR (suberror ${sub})`);
      }
      default:
        return this.#describe(`unexpected exit reason ${reason}`);
    }
  }

  #handleIo(): void {
    const size = this.#run[RUN["io.size"]];
    const port = this.#view.getUint16(RUN["io.port"], true);
    const count = this.#view.getUint32(RUN["io.count"], true);
    const offset = this.#view.getUint32(RUN["io.data_offset"], true);
    const out = this.#run[RUN["io.direction"]] === KVM_EXIT_IO_OUT;
    for (let i = 0; i < count; i++) {
      const data = this.#run.subarray(offset + i * size, offset + (i + 1) * size);
      if (out) {
        if (!this.buses.pio.write(port, data)) this.#unclaimed("out", port, data);
      } else if (!this.buses.pio.read(port, data)) {
        data.fill(NO_DEVICE_BYTE);
        this.#unclaimed("in", port, data);
      }
    }
  }

  #handleMmio(): void {
    const address = this.#view.getUint32(RUN["mmio.phys_addr"], true) +
      this.#view.getUint32(RUN["mmio.phys_addr"] + 4, true) * 2 ** 32;
    const data = this.#mmioData[this.#view.getUint32(RUN["mmio.len"], true)];
    if (this.#run[RUN["mmio.is_write"]]) {
      if (!this.buses.mmio.write(address, data)) this.#unclaimed("write", address, data);
    } else if (!this.buses.mmio.read(address, data)) {
      data.fill(NO_DEVICE_BYTE);
      this.#unclaimed("read", address, data);
    }
  }

  #handleSystemEvent(): void {
    const type = this.#view.getUint32(RUN["system_event.type"], true);
    if (type === SystemEvent.KVM_SYSTEM_EVENT_RESET) this.control.requestExit("reset");
    else if (type === SystemEvent.KVM_SYSTEM_EVENT_CRASH) this.control.requestExit("crash");
    else this.control.requestExit("shutdown");
  }

  #unclaimed(access: string, address: number, data: Uint8Array): void {
    if (log.enabled("debug")) {
      log.debug(`vcpu${this.vcpu.id}: unclaimed ${access} 0x${address.toString(16)} [${data}]`);
    }
  }

  /** Describes a fatal exit with the registers a developer needs to see why. */
  #describe(what: string): string {
    let state = "";
    try {
      const regs = this.vcpu.getRegs();
      const sregs = this.vcpu.getSregs();
      const hex = (v: bigint) => `0x${v.toString(16)}`;
      const cs = getSegment(sregs, "cs");
      state = ` at rip=${hex(regs.u64("rip"))} rsp=${hex(regs.u64("rsp"))}` +
        ` rflags=${hex(regs.u64("rflags"))} cs=${hex(BigInt(cs.selector))}` +
        ` cr0=${hex(sregs.u64("cr0"))} cr3=${hex(sregs.u64("cr3"))}` +
        ` cr4=${hex(sregs.u64("cr4"))} efer=${hex(sregs.u64("efer"))}`;
    } catch (e) {
      state = ` (registers unavailable: ${(e as Error).message})`;
    }
    return `vcpu${this.vcpu.id}: ${what}${state}`;
  }
}

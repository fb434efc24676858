/**
 * The main thread's side of the vCPU Workers: spawns one Worker per vCPU, kicks
 * them out of KVM_RUN when the VM must stop, and joins them.
 *
 * @module
 */

import { KVM_RUN_LAYOUT } from "../ffi/kvm_abi.ts";
import { SIGUSR2, tgkill, viewOf } from "../ffi/libc.ts";
import { workerUrl } from "../program.ts";
import type { VmControl } from "./control.ts";
import type { VcpuExited, VcpuInit, VcpuMessage, VcpuStats } from "./protocol.ts";

let kickHandlerInstalled = false;

/**
 * The kick signal needs a handler, or it would kill the process; the handler itself does
 * nothing. It stays installed for the life of the process (a listener does not keep Deno
 * alive): a kick still in flight to a Worker that just left KVM_RUN must never find the
 * default action restored.
 */
function installKickHandler(): void {
  if (kickHandlerInstalled) return;
  Deno.addSignalListener("SIGUSR2", () => {});
  kickHandlerInstalled = true;
}

interface VcpuThread {
  worker: Worker;
  run: Uint8Array;
  tid?: number;
  exited: Promise<VcpuExited>;
}

/** One Worker per vCPU, and the means to stop and join them. */
export class VcpuThreads {
  readonly #threads: VcpuThread[] = [];
  /** Workers started ahead of time, loading their modules while the VM is being built. */
  readonly #idle: Worker[];

  /**
   * Starts `count` Workers at once: their isolates and modules load in the background while
   * the main thread reads the kernel and builds the VM.
   * @param control the VM's run control, shared with every Worker
   * @param count the number of vCPUs
   */
  constructor(private readonly control: VmControl, count: number) {
    this.#idle = Array.from(
      { length: count },
      (_, id) => new Worker(workerUrl("vcpu"), { type: "module", name: `vcpu${id}` }),
    );
  }

  /** Hands vCPU `init.id` to its Worker; resolves once the Worker is entering KVM_RUN. */
  spawn(init: VcpuInit): Promise<void> {
    installKickHandler();
    const worker = this.#idle[init.id];
    const ready = Promise.withResolvers<void>();
    const exited = Promise.withResolvers<VcpuExited>();
    const thread: VcpuThread = {
      worker,
      run: new Uint8Array(viewOf(init.runAddress, init.runSize)),
      exited: exited.promise,
    };
    const finish = (result: VcpuExited) => {
      this.kickAll();
      ready.resolve();
      exited.resolve(result);
    };
    worker.onmessage = (event: MessageEvent<VcpuMessage>) => {
      const message = event.data;
      if (message.type === "ready") {
        thread.tid = message.tid;
        ready.resolve();
        if (this.control.stopRequested) this.#kick(thread);
      } else {
        this.control.requestExit("stop");
        finish(message);
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.control.requestExit("error");
      finish({ type: "exited", id: init.id, error: event.message, stats: emptyStats() });
    };
    this.#threads.push(thread);
    worker.postMessage(init);
    return ready.promise;
  }

  /** Makes every vCPU leave KVM_RUN: `immediate_exit` for one about to enter, a signal for one inside. */
  kickAll(): void {
    for (const thread of this.#threads) this.#kick(thread);
  }

  #kick(thread: VcpuThread): void {
    thread.run[KVM_RUN_LAYOUT.fields.immediate_exit] = 1;
    if (thread.tid === undefined) return;
    try {
      tgkill(thread.tid, SIGUSR2);
    } catch {
      // The thread already ended: nothing to kick.
    }
  }

  /**
   * Parks every vCPU out of KVM_RUN; resolves once all of them are parked, or the VM is
   * stopping. They stay parked until {@link unpark}.
   */
  async park(): Promise<void> {
    this.control.pause();
    this.kickAll();
    await this.control.untilParked(this.#threads.length);
  }

  /** Lets the parked vCPUs enter KVM_RUN again. */
  unpark(): void {
    this.control.unpause();
  }

  /** Waits for every vCPU loop to end, then terminates the Workers. */
  async join(): Promise<VcpuExited[]> {
    const results = await Promise.all(this.#threads.map((t) => t.exited));
    this.terminate();
    return results;
  }

  /** Terminates every Worker, running or not (for a VM that is never run, or has ended). */
  terminate(): void {
    for (const worker of this.#idle) worker.terminate();
  }
}

function emptyStats(): VcpuStats {
  return { pioExits: 0, mmioExits: 0, firstRunAt: 0, endedAt: 0 };
}

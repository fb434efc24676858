/**
 * The main thread's side of a virtio device Worker: start it, stop it, learn how it ended.
 *
 * @module
 */

import { signalEventfd } from "../../../ffi/eventfd.ts";
import type { DeviceWorkerInit, DeviceWorkerMessage } from "./protocol.ts";
import type { DeviceRunner } from "../runner.ts";
import { VirtioPciState } from "../transport/pci/state.ts";
import { workerUrl } from "../../../program.ts";

/** A running device Worker. */
export class VirtioDeviceThread implements DeviceRunner {
  readonly #worker: Worker;
  readonly #state: VirtioPciState;
  /** Resolves when the Worker's loop ends, with its error if it failed. */
  readonly exited: Promise<string | undefined>;

  private constructor(worker: Worker, state: VirtioPciState, exited: Promise<string | undefined>) {
    this.#worker = worker;
    this.#state = state;
    this.exited = exited;
  }

  /**
   * Starts the Worker for `init`; resolves once its loop runs.
   * @throws Error when the Worker fails before its loop starts (it is terminated)
   */
  static async start(init: DeviceWorkerInit): Promise<VirtioDeviceThread> {
    const worker = new Worker(workerUrl("device"), { type: "module", name: init.spec.name });
    const ready = Promise.withResolvers<void>();
    const exited = Promise.withResolvers<string | undefined>();
    const end = (error: string | undefined) => {
      ready.reject(new Error(error ?? `${init.spec.name}: the device Worker ended early`));
      exited.resolve(error);
    };
    worker.onmessage = (event: MessageEvent<DeviceWorkerMessage>) => {
      if (event.data.type === "ready") ready.resolve();
      else end(event.data.error);
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      end(`${init.spec.name}: ${event.message}`);
    };
    worker.postMessage(init);
    try {
      await ready.promise;
    } catch (e) {
      worker.terminate();
      throw e;
    }
    return new VirtioDeviceThread(worker, new VirtioPciState(init.spec), exited.promise);
  }

  /** Asks the loop to end, waits for it, and terminates the Worker; resolves with its error. */
  async stop(): Promise<string | undefined> {
    this.#state.regs.requestStop();
    signalEventfd(this.#state.spec.controlFd);
    try {
      return await this.exited;
    } finally {
      this.#worker.terminate();
    }
  }
}

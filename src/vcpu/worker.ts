/**
 * The vCPU Worker: builds its own buses over the VM's shared device state and runs
 * one vCPU's KVM_RUN loop. It talks to the main thread only through its first
 * message (a {@link VcpuInit}), the shared control block, and its two replies.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { buildBuses } from "../devices/registry.ts";
import { VcpuFd } from "../ffi/kvm.ts";
import { gettid, viewOf } from "../ffi/libc.ts";
import { setLogLevel } from "../log.ts";
import { VmControl } from "./control.ts";
import { ExitLoop } from "./exit_loop.ts";
import type { VcpuExited, VcpuInit, VcpuReady } from "./protocol.ts";

self.onmessage = (event: MessageEvent<VcpuInit>) => {
  self.onmessage = null;
  const init = event.data;
  setLogLevel(init.logLevel);
  const control = new VmControl(init.control);
  const buses = buildBuses(init.devices, { requestExit: (reason) => control.requestExit(reason) });
  const loop = new ExitLoop(
    new VcpuFd(init.vcpuFd, init.id),
    viewOf(init.runAddress, init.runSize),
    buses,
    control,
  );
  self.postMessage({ type: "ready", id: init.id, tid: gettid() } satisfies VcpuReady);
  const { error, stats } = loop.run();
  self.postMessage({ type: "exited", id: init.id, error, stats } satisfies VcpuExited);
};

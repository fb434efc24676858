/**
 * The jailed device process: started by the VMM inside bubblewrap with its descriptors at fixed
 * numbers, it reads its {@link DeviceProcessInit} from the control socket, caps its descriptor
 * limit, maps guest RAM and the device's state from their memfds, builds the backend, loads its
 * seccomp filter, says `ready`, and runs the device's loop until the VMM stops it. It opens
 * nothing itself. From the source tree this module is the process's main module; a bundle or a
 * compiled program gets here through `main.ts`.
 *
 * @module
 */

import { GsiRouter } from "../../../irq_routing.ts";
import { bindAllLibcSymbols, RLIMIT_NOFILE, setrlimit } from "../../../ffi/libc.ts";
import * as log from "../../../log.ts";
import { GuestMemory, HUGE_PAGE_SIZE, ramSize } from "../../../memory.ts";
import { loadSeccompPolicy } from "../../../sandbox/seccomp.ts";
import { receiveMessage, sendMessage } from "../../../sandbox/messages.ts";
import { SharedArena } from "../../../shared_region.ts";
import { createBackend } from "../kinds.ts";
import { VirtioPciState } from "../transport/pci/state.ts";
import { DeviceLoop } from "../worker/loop.ts";
import {
  CONTROL_SOCKET_FD,
  type DeviceProcessInit,
  type DeviceProcessMessage,
} from "./protocol.ts";

/** Runs the device process to its end; returns the process's exit status. */
export function runDeviceProcess(): number {
  const received = receiveMessage(CONTROL_SOCKET_FD);
  if (received.kind !== "message") return 1; // the VMM went away before saying what to run
  const init = received.value as DeviceProcessInit;
  const reply = (message: DeviceProcessMessage) => sendMessage(CONTROL_SOCKET_FD, message);
  let error: string | undefined;
  try {
    setrlimit(RLIMIT_NOFILE, init.maxFds);
    log.setLogLevel(init.logLevel);
    // The times (ms since this runtime started) are the start-up breakdown's device part.
    const name = init.spec.name;
    log.debug(`${name}: device process running its modules, its set-up received`);
    const arena = SharedArena.reserve(
      ramSize(init.memory.regions),
      init.state.size,
      HUGE_PAGE_SIZE,
    );
    const memory = GuestMemory.fromFd(arena, init.memory.fd, init.memory.regions);
    log.debug(`${name}: guest memory and device state mapped`);
    const loop = new DeviceLoop(
      new VirtioPciState(
        {
          ...init.spec,
          state: arena.mapNext(init.state.fd, init.state.size),
          // Routes are the VMM's: this process only signals the irqfds it was given.
          router: GsiRouter.createState(),
          vmFd: -1,
        },
        () => {
          throw new Error("a device process cannot change MSI routes");
        },
      ),
      memory,
      createBackend(init.backend),
    );
    log.debug(`${name}: device built`);
    bindAllLibcSymbols(); // binding one later would run under the filter
    loadSeccompPolicy(init.seccomp.policy, { logFailures: init.seccomp.logFailures });
    log.debug(`${name}: seccomp filter loaded`);
    reply({ type: "ready" });
    loop.run();
  } catch (e) {
    // The VMM shows one line; the whole story goes to stderr, which it relays.
    console.error(e instanceof Error ? e.stack ?? e.message : String(e));
    error = e instanceof Error ? e.message : String(e);
  }
  reply({ type: "exited", error });
  return error === undefined ? 0 : 1;
}

if (import.meta.main) Deno.exit(runDeviceProcess());

/**
 * The `crosvm` program. It is also every jailed device process of a VM (a hidden first argument
 * says so) and, when bundled into one file, every Worker (the URL's fragment says which), so it
 * loads only what the role needs: the command line (`src/cli/main.ts`), one device's loop
 * (`src/devices/virtio/process/entry.ts`), or a Worker's entry module.
 *
 * @module
 */

import { DEVICE_PROCESS_COMMAND } from "./src/devices/virtio/process/command.ts";
import { bundledWorkerRole } from "./src/program.ts";

if (import.meta.main) {
  const role = bundledWorkerRole();
  if (role === "vcpu") {
    await import("./src/vcpu/worker.ts");
  } else if (role === "device") {
    await import("./src/devices/virtio/worker/entry.ts");
  } else if (Deno.args[0] === DEVICE_PROCESS_COMMAND) {
    const { runDeviceProcess } = await import("./src/devices/virtio/process/entry.ts");
    Deno.exit(runDeviceProcess());
  } else {
    const { main } = await import("./src/cli/main.ts");
    Deno.exit(await main(Deno.args));
  }
}

/**
 * The `crosvm` program. It is also every jailed device process of a VM (a hidden first argument
 * says so), so it loads only what the role needs: the command line (`src/cli/main.ts`), or one
 * device's loop (`src/devices/virtio/process/entry.ts`).
 *
 * @module
 */

import { DEVICE_PROCESS_COMMAND } from "./src/devices/virtio/process/command.ts";

if (import.meta.main) {
  if (Deno.args[0] === DEVICE_PROCESS_COMMAND) {
    const { runDeviceProcess } = await import("./src/devices/virtio/process/entry.ts");
    Deno.exit(runDeviceProcess());
  }
  const { main } = await import("./src/cli/main.ts");
  Deno.exit(await main(Deno.args));
}

/**
 * Shell functions for L1 scenarios that look at a VMM's processes: its descendants, and its
 * jailed device processes among them.
 *
 * @module
 */

import { DEVICE_PROCESS_COMMAND } from "../../src/devices/virtio/process/command.ts";

/**
 * Defines `descendants PID` (every process below PID, one a line) and `device_pids PID` (the
 * processes below PID whose command line holds the device-process command: each jailed device
 * process, and the bubblewrap processes that hold its jail, the outermost first).
 */
export const VMM_PROCESS_FUNCTIONS = `descendants() {
  for c in $(cat /proc/$1/task/*/children 2>/dev/null); do echo $c; descendants $c; done
}
device_pids() {
  for p in $(descendants $1); do
    tr '\\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q " ${DEVICE_PROCESS_COMMAND}" && echo $p
  done
}`;

// Holds the constants a seccomp policy may name (src/sandbox/constants.ts) against the Linux and
// glibc headers, each group against the header its comment names: a generated C program prints
// what the compiler says (tests/helpers/c_values.ts). Kernel headers, not glibc's <fcntl.h> or
// <sys/mman.h>, for the values a filter sees in raw syscall arguments (O_LARGEFILE differs).

import assert from "node:assert/strict";
import * as constants from "../../src/sandbox/constants.ts";
import { assertMatchesC, namedAfterMacros } from "../helpers/c_values.ts";

/** Each group of constants.ts and the headers that define its macros. */
const GROUPS: readonly (readonly [string, Readonly<Record<string, number>>, readonly string[]])[] =
  [
    ["SCHED_CONSTANTS", constants.SCHED_CONSTANTS, ["linux/sched.h"]],
    ["MMAN_CONSTANTS", constants.MMAN_CONSTANTS, ["linux/mman.h"]],
    ["FUTEX_CONSTANTS", constants.FUTEX_CONSTANTS, ["linux/futex.h"]],
    ["FCNTL_CONSTANTS", constants.FCNTL_CONSTANTS, ["linux/fcntl.h"]],
    ["FALLOC_CONSTANTS", constants.FALLOC_CONSTANTS, ["linux/falloc.h"]],
    ["IO_URING_CONSTANTS", constants.IO_URING_CONSTANTS, ["linux/io_uring.h"]],
    ["IOCTL_CONSTANTS", constants.IOCTL_CONSTANTS, ["asm/termbits.h", "asm/ioctls.h"]],
    ["FS_CONSTANTS", constants.FS_CONSTANTS, ["linux/fs.h"]],
    ["TUN_CONSTANTS", constants.TUN_CONSTANTS, ["linux/ioctl.h", "linux/if_tun.h"]],
    ["VHOST_CONSTANTS", constants.VHOST_CONSTANTS, ["linux/ioctl.h", "linux/vhost.h"]],
    ["SOCKET_CONSTANTS", constants.SOCKET_CONSTANTS, ["sys/socket.h"]],
    ["EVENTFD_CONSTANTS", constants.EVENTFD_CONSTANTS, ["sys/eventfd.h"]],
    ["MEMFD_CONSTANTS", constants.MEMFD_CONSTANTS, ["linux/memfd.h"]],
    ["SIGNAL_CONSTANTS", constants.SIGNAL_CONSTANTS, ["signal.h"]],
    ["PRCTL_CONSTANTS", constants.PRCTL_CONSTANTS, ["linux/prctl.h"]],
  ];

for (const [name, group, headers] of GROUPS) {
  Deno.test(`${name} match ${headers.map((h) => `<${h}>`).join(" ")}`, async () => {
    await assertMatchesC(headers, namedAfterMacros(group, /./));
  });
}

Deno.test("the errno names a policy may return match <errno.h>", async () => {
  const groupNames = new Set(GROUPS.flatMap(([, group]) => Object.keys(group)));
  const errnoNames = Object.fromEntries(
    Object.entries(constants.POLICY_CONSTANTS).filter(([name]) => !groupNames.has(name)),
  );
  assert.ok(Object.keys(errnoNames).every((name) => /^E[A-Z0-9]+$/.test(name)));
  await assertMatchesC(["errno.h"], namedAfterMacros(errnoNames, /^E/));
});

Deno.test("POLICY_CONSTANTS holds every group, no name given two values", () => {
  for (const [, group] of GROUPS) {
    for (const [name, value] of Object.entries(group)) {
      assert.equal(constants.POLICY_CONSTANTS[name], value, name);
    }
  }
});

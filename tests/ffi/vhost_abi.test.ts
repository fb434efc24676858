// The vhost ioctls and structs src/ffi/vhost.ts restates, against <linux/vhost.h> and
// <linux/vhost_types.h>.

import * as vhost from "../../src/ffi/vhost.ts";
import { assertMatchesC, layoutClaims, namedAfterMacros } from "../helpers/c_values.ts";

const HEADERS = ["linux/vhost.h", "linux/ioctl.h"];

Deno.test("vhost ioctls and VHOST_FILE_UNBIND match <linux/vhost.h>", async () => {
  await assertMatchesC(HEADERS, [
    ...namedAfterMacros(vhost.VhostIoctl, /^VHOST_/),
    ...namedAfterMacros(vhost, /^VHOST_FILE_UNBIND$/),
  ]);
});

Deno.test("vhost struct sizes and member offsets match <linux/vhost_types.h>", async () => {
  await assertMatchesC(HEADERS, layoutClaims(vhost.VHOST_LAYOUTS));
});

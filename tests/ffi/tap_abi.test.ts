// The TUN/TAP and interface ioctls src/ffi/tap.ts restates, against <linux/if_tun.h> and
// <linux/sockios.h>, and the header size against <linux/virtio_net.h>.

import * as tap from "../../src/ffi/tap.ts";
import { assertMatchesC, namedAfterMacros } from "../helpers/c_values.ts";

Deno.test("TUN/TAP ioctls, flags and offloads match <linux/if_tun.h>", async () => {
  await assertMatchesC(["linux/if_tun.h", "linux/ioctl.h"], [
    ...namedAfterMacros(tap.TunIoctl, /^TUN/),
    ...namedAfterMacros(tap.TunFlags, /^IFF_/),
    ...namedAfterMacros(tap.TunOffload, /^TUN_F_/),
  ]);
});

Deno.test("interface ioctls match <linux/sockios.h>, the name size and header size theirs", async () => {
  await assertMatchesC(["linux/sockios.h", "linux/if.h", "linux/virtio_net.h"], [
    ...namedAfterMacros(tap.SockIoctl, /^SIOC/),
    { name: "IFNAMSIZ", value: tap.IFNAMSIZ, c: ["IFNAMSIZ"] },
    { name: "VNET_HDR_SIZE", value: tap.VNET_HDR_SIZE, c: ["sizeof(struct virtio_net_hdr_v1)"] },
  ]);
});

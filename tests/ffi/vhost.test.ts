// VhostDevice against the kernel's vhost-net, where the host has it (the test bed's L1; our own
// hosts have no /dev/vhost-net, so there the test is ignored, its name saying why).

import assert from "node:assert/strict";
import { SyscallError } from "../../src/ffi/errno.ts";
import { close, EFD_NONBLOCK, eventfd, O_RDWR, open } from "../../src/ffi/libc.ts";
import { VHOST_FILE_UNBIND, VHOST_NET_DEVICE, VhostDevice } from "../../src/ffi/vhost.ts";
import { GuestMemory } from "../../src/memory.ts";
import { exists } from "../helpers/paths.ts";

const TITLE =
  "vhost-net: owner, features, memory table and a ring's setup, as the kernel takes them";
const HAVE_VHOST = await exists(VHOST_NET_DEVICE);

/** Feature bits every vhost-net has: VERSION_1, MRG_RXBUF, EVENT_IDX, VHOST_NET_F_VIRTIO_NET_HDR. */
const BITS = { VERSION_1: 32n, MRG_RXBUF: 15n, EVENT_IDX: 29n, VHOST_NET_F_VIRTIO_NET_HDR: 27n };
const RAM = 2 << 20;

Deno.test({
  name: HAVE_VHOST ? TITLE : `${TITLE} (ignored: no ${VHOST_NET_DEVICE} on this host)`,
  ignore: !HAVE_VHOST,
  fn() {
    const fd = open(VHOST_NET_DEVICE, O_RDWR);
    const events = [eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK)];
    try {
      const vhost = new VhostDevice(fd);
      const features = vhost.features();
      for (const [name, bit] of Object.entries(BITS)) {
        assert.ok(features & (1n << bit), `vhost-net offers ${name}`);
      }
      vhost.setOwner();
      assert.throws(
        () => vhost.setOwner(),
        (e) => e instanceof SyscallError && e.is("EBUSY"),
        "one owner at a time",
      );
      vhost.setFeatures((1n << BITS.VERSION_1) | (1n << BITS.MRG_RXBUF));
      const memory = GuestMemory.allocate([{ guestAddress: 0, size: RAM }]);
      vhost.setMemTable([{ guestAddress: 0, size: RAM, hostAddress: memory.hostAddress(0) }]);
      vhost.setVringNum(0, 256);
      vhost.setVringAddr(0, {
        desc: memory.hostAddress(0x1000),
        avail: memory.hostAddress(0x2000),
        used: memory.hostAddress(0x3000),
      });
      vhost.setVringBase(0, 7);
      vhost.setVringKick(0, events[0]);
      vhost.setVringCall(0, events[1]);
      vhost.setVringErr(0, events[1]);
      vhost.setNetBackend(0, VHOST_FILE_UNBIND);
      assert.equal(vhost.vringBase(0), 7, "the base set is the base read back");
      assert.throws(
        () => vhost.setVringNum(0, 3),
        (e) => e instanceof SyscallError && e.is("EINVAL"),
        "a ring size must be a power of two",
      );
      vhost.resetOwner();
      vhost.setOwner();
    } finally {
      for (const e of events) close(e);
      close(fd);
    }
  },
});

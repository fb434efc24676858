// virtio-blk on io_uring, driven through guest memory as a driver would: many requests in flight
// at once, completing out of order, each with its own used entry and status byte; flushes held
// behind the writes before them; host failures (ENOSPC, EIO, a shrunk image) reaching the guest
// as IOERR; a reset that waits out what is in flight.

import assert from "node:assert/strict";
import {
  BlkConfigOffset,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from "../../../../src/devices/virtio/block/config.ts";
import { featureBit } from "../../../../src/devices/virtio/spec.ts";
import {
  completeInFlight,
  pattern,
  type Placed,
  SECTOR,
  withDisk,
} from "../../../helpers/block_disk.ts";

/** Sectors of the images here: room for many requests of different sizes. */
const SECTORS = 2048;

/** The used entries, by head. */
function byHead(used: { id: number; len: number }[]): Map<number, number> {
  return new Map(used.map((u) => [u.id, u.len]));
}

/** Where `placed` sits in `used` (ring order). */
function position(used: { id: number }[], placed: Placed): number {
  const at = used.findIndex((u) => u.id === placed.head);
  assert.ok(at >= 0, `head ${placed.head} was completed`);
  return at;
}

Deno.test("virtio-blk on io_uring: many requests in flight complete out of order, each with its own used entry and status", async () => {
  await withDisk({ sectors: SECTORS, ringSize: 256 }, async (disk) => {
    const reads: { placed: Placed; sector: number; lengths: number[] }[] = [];
    const ids: Placed[] = [];
    for (let i = 0; i < 24; i++) {
      // Sizes from one sector to 64 KiB, over three buffers, spread over the image.
      const bytes = SECTOR * (1 + ((i * 37) % 128));
      const sector = (i * 61) % (SECTORS - 128);
      const third = Math.floor(bytes / SECTOR / 3) * SECTOR;
      const lengths = [third, bytes - 2 * third, third].filter((n) => n > 0);
      reads.push({ placed: disk.add(VIRTIO_BLK_T_IN, sector, { in: lengths }), sector, lengths });
      if (i % 8 === 7) ids.push(disk.add(VIRTIO_BLK_T_GET_ID, 0, { in: [20] }));
    }
    disk.submit();
    assert.equal(disk.backend.asynchronous, true, "io_uring is in use");
    completeInFlight(disk.backend);
    const used = disk.driver.used();
    assert.equal(used.length, reads.length + ids.length);
    // A GET_ID is answered when it is taken; the reads only once the kernel has them all (even
    // those it finished during the submission): every GET_ID is ahead of every read.
    assert.deepEqual(
      used.slice(0, ids.length).map((u) => u.id),
      ids.map((p) => p.head),
      "the reads were in flight together while later requests completed",
    );
    const lengths = byHead(used);
    const image = await disk.image(0, SECTORS * SECTOR);
    for (const { placed, sector, lengths: parts } of reads) {
      const bytes = parts.reduce((a, b) => a + b);
      assert.equal(disk.status(placed), VIRTIO_BLK_S_OK);
      assert.equal(lengths.get(placed.head), bytes + 1, "used = data + status");
      const got = parts.flatMap((length, k) => [...disk.driver.mem.read(placed.data[k], length)]);
      const want = image.subarray(sector * SECTOR, sector * SECTOR + bytes);
      assert.deepEqual(new Uint8Array(got), want);
    }
    assert.ok(
      position(used, ids[0]) < position(used, reads[0].placed),
      "a later request completed before an earlier one",
    );
  });
});

Deno.test("virtio-blk on io_uring: a flush waits for the writes before it, not for those after", async () => {
  await withDisk({ sectors: SECTORS }, async (disk) => {
    const big = pattern(256 * 1024, 4);
    const w1 = disk.add(VIRTIO_BLK_T_OUT, 0, { out: [big] });
    const w2 = disk.add(VIRTIO_BLK_T_OUT, 1024, { out: [pattern(SECTOR, 5)] });
    const flush = disk.add(VIRTIO_BLK_T_FLUSH, 0, {});
    const w3 = disk.add(VIRTIO_BLK_T_OUT, 1500, { out: [pattern(SECTOR, 6)] });
    const read = disk.add(VIRTIO_BLK_T_IN, 1800, { in: [SECTOR] });
    const used = disk.run();
    assert.equal(used.length, 5);
    for (const placed of [w1, w2, flush, w3, read]) {
      assert.equal(disk.status(placed), VIRTIO_BLK_S_OK);
    }
    assert.ok(position(used, flush) > position(used, w1), "after the first write");
    assert.ok(position(used, flush) > position(used, w2), "after the second write");
    assert.equal(byHead(used).get(flush.head), 1, "a flush writes its status only");
    assert.deepEqual(await disk.image(0, big.length), big);
    assert.deepEqual(await disk.image(1500 * SECTOR, SECTOR), pattern(SECTOR, 6));
  });
});

Deno.test("virtio-blk on io_uring: a flush with no write in flight is submitted at once", async () => {
  await withDisk({}, (disk) => {
    const flush = disk.add(VIRTIO_BLK_T_FLUSH, 0, {});
    // Held back, it would wait for ever: nothing else is in flight to let it go.
    assert.deepEqual(disk.run(), [{ id: flush.head, len: 1 }]);
    assert.equal(disk.status(flush), VIRTIO_BLK_S_OK);
  });
});

Deno.test("virtio-blk on io_uring: a reset waits for the requests in flight and drops them", async () => {
  // O_DIRECT reads go to the disk, so the kernel finishes them after the submission, not during
  // it; a batch that the disk still answered at once is tried again, at other sectors.
  await withDisk({ sectors: SECTORS, direct: true, ringSize: 256 }, (disk) => {
    const completed: { id: number; len: number }[] = [];
    for (let batch = 0; batch < 8 && disk.backend.inFlight === 0; batch++) {
      for (let i = 0; i < 16; i++) {
        disk.add(VIRTIO_BLK_T_IN, batch * 256 + i * 16, { in: [8 * SECTOR], aligned: true });
      }
      disk.submit();
      completed.push(...disk.driver.used());
    }
    assert.ok(disk.backend.inFlight > 0, "reads in flight when the reset comes");
    disk.backend.reset();
    assert.equal(disk.backend.inFlight, 0, "nothing left for the kernel to write into RAM");
    assert.deepEqual(disk.driver.used(), [], "no used entry after the queues are gone");
  });
});

Deno.test("virtio-blk on io_uring: keeping quiet completes every request in flight first", async () => {
  await withDisk({ sectors: SECTORS }, (disk) => {
    const write = disk.add(VIRTIO_BLK_T_OUT, 0, { out: [pattern(64 * 1024, 3)] });
    const flush = disk.add(VIRTIO_BLK_T_FLUSH, 0, {});
    const read = disk.add(VIRTIO_BLK_T_IN, 512, { in: [64 * 1024] });
    disk.submit();
    disk.backend.quiesce();
    assert.equal(disk.backend.inFlight, 0);
    assert.equal(disk.driver.used().length, 3, "each is in the used ring before the device rests");
    for (const placed of [write, flush, read]) assert.equal(disk.status(placed), VIRTIO_BLK_S_OK);
  });
});

Deno.test("virtio-blk on io_uring: a read past an image that shrank underneath is IOERR", async () => {
  await withDisk({}, async (disk) => {
    await Deno.truncate(disk.path, 4 * SECTOR);
    const cut = disk.add(VIRTIO_BLK_T_IN, 2, { in: [4 * SECTOR] });
    const fine = disk.add(VIRTIO_BLK_T_IN, 0, { in: [SECTOR] });
    const used = byHead(disk.run());
    assert.equal(disk.status(cut), VIRTIO_BLK_S_IOERR, "half of it was there");
    assert.equal(used.get(cut.head), 1, "no data counted for a failed request");
    assert.equal(disk.status(fine), VIRTIO_BLK_S_OK, "the device goes on");
  });
});

/** A tmpfs of `bytes` mounted by the test, or why it cannot be (not root, no mount namespace). */
async function withSmallFileSystem(
  bytes: number,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "blk-full-" });
  try {
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${bytes}`, "blk-full", dir],
      stderr: "piped",
    }).output();
    assert.ok(mount.success, `mounting a tmpfs: ${new TextDecoder().decode(mount.stderr)}`);
    try {
      await fn(dir);
    } finally {
      await new Deno.Command("umount", { args: [dir] }).output();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Why the test cannot mount a file system here, or null when it can (root). */
const NO_MOUNT = Deno.uid() === 0 ? null : "mounting a small tmpfs needs root";
if (NO_MOUNT !== null) console.warn(`skipped the ENOSPC test: ${NO_MOUNT}`);

Deno.test({
  name: "virtio-blk on io_uring: ENOSPC on a sparse image in a full file system is IOERR",
  ignore: NO_MOUNT !== null,
  fn: () =>
    withSmallFileSystem(
      256 * 1024,
      (dir) =>
        withDisk({ sectors: SECTORS, dir, hole: true }, (disk) => {
          // A sparse 1 MiB image on a 256 KiB file system: the last write cannot get its blocks.
          const fits = disk.add(VIRTIO_BLK_T_OUT, 0, { out: [pattern(64 * 1024, 7)] });
          const full = disk.add(VIRTIO_BLK_T_OUT, 256, { out: [pattern(512 * 1024, 8)] });
          const used = byHead(disk.run());
          assert.equal(disk.status(fits), VIRTIO_BLK_S_OK);
          assert.equal(disk.status(full), VIRTIO_BLK_S_IOERR);
          assert.equal(used.get(full.head), 1);
          const read = disk.one(VIRTIO_BLK_T_IN, 0, { in: [64 * 1024] });
          assert.equal(read.status, VIRTIO_BLK_S_OK, "the device keeps serving");
          assert.deepEqual(
            disk.driver.mem.read(read.placed.data[0], 64 * 1024),
            pattern(64 * 1024, 7),
          );
        }),
    ),
});

/** Why no device-mapper `error` target can be made here, or null when it can. */
async function noDeviceMapper(): Promise<string | null> {
  if (Deno.uid() !== 0) return "a device-mapper target needs root";
  try {
    const version = await new Deno.Command("dmsetup", { args: ["version"], stderr: "piped" })
      .output();
    if (version.success) return null;
    return `dmsetup: ${new TextDecoder().decode(version.stderr).trim().split("\n")[0]}`;
  } catch {
    return "dmsetup is not installed";
  }
}

const NO_DM = await noDeviceMapper();
if (NO_DM !== null) {
  console.warn(
    `skipped the EIO test (no device-mapper on this host: ${NO_DM}); ENOSPC covers IOERR`,
  );
}

Deno.test({
  name: "virtio-blk on io_uring: EIO from a device-mapper error target is IOERR",
  ignore: NO_DM !== null,
  fn: async () => {
    const name = `crosvm-deno-eio-${Deno.pid}`;
    const create = await new Deno.Command("dmsetup", {
      args: ["create", name, "--table", `0 ${SECTORS} error`],
    }).output();
    assert.ok(create.success, "dmsetup create");
    try {
      await withDisk({ image: `/dev/mapper/${name}` }, (disk) => {
        const read = disk.one(VIRTIO_BLK_T_IN, 0, { in: [SECTOR] });
        assert.equal(read.status, VIRTIO_BLK_S_IOERR);
        const write = disk.one(VIRTIO_BLK_T_OUT, 0, { out: [pattern(SECTOR, 9)] });
        assert.equal(write.status, VIRTIO_BLK_S_IOERR);
      });
    } finally {
      await new Deno.Command("dmsetup", { args: ["remove", name] }).output();
    }
  },
});

Deno.test("virtio-blk: num-queues offers VIRTIO_BLK_F_MQ, num_queues and a queue each", async () => {
  await withDisk({ numQueues: 4 }, ({ backend }) => {
    assert.equal(backend.queueSizes.length, 4);
    assert.notEqual(backend.features & featureBit(VIRTIO_BLK_F_MQ), 0n);
    const config = new DataView(backend.configBytes.buffer);
    assert.equal(config.getUint16(BlkConfigOffset.NUM_QUEUES, true), 4);
  });
  await withDisk({ numQueues: 1 }, ({ backend }) => {
    assert.equal(backend.features & featureBit(VIRTIO_BLK_F_MQ), 0n, "one queue: no MQ");
  });
});

// virtio-blk driven through a split ring in guest memory, with requests laid out as Linux's
// drivers/block/virtio_blk.c lays them out (header, data segments, status byte), against real
// image files.

import assert from "node:assert/strict";
import {
  BLK_CONFIG_SIZE,
  BLK_SEG_MAX,
  BLK_SIZE_MAX,
  BlkConfigOffset,
  capacityUpdate,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from "../../../../src/devices/virtio/block/config.ts";
import { featureBit } from "../../../../src/devices/virtio/spec.ts";
import { openDiskImage } from "../../../../src/disk/image.ts";
import { close } from "../../../../src/ffi/libc.ts";
import {
  BlockDisk,
  type Body,
  IMAGE_SECTORS,
  PAGE,
  pattern,
  SECTOR,
  withDisk,
} from "../../../helpers/block_disk.ts";

Deno.test("virtio-blk: configuration space and features follow the disk's options", async () => {
  await withDisk({ sectors: 48, blockSize: 4096 }, ({ backend }) => {
    const config = new DataView(backend.configBytes.buffer);
    assert.equal(backend.configBytes.length, BLK_CONFIG_SIZE);
    assert.equal(config.getBigUint64(BlkConfigOffset.CAPACITY, true), 48n, "in 512-byte sectors");
    assert.equal(config.getUint32(BlkConfigOffset.BLK_SIZE, true), 4096);
    assert.equal(config.getUint32(BlkConfigOffset.SEG_MAX, true), BLK_SEG_MAX);
    assert.equal(config.getUint32(BlkConfigOffset.SIZE_MAX, true), BLK_SIZE_MAX);
    assert.equal(config.getUint32(BlkConfigOffset.DISCARD_SECTOR_ALIGNMENT, true), 8);
    assert.equal(config.getUint8(BlkConfigOffset.WRITE_ZEROES_MAY_UNMAP), 1);
    const has = (bit: number) => (backend.features & featureBit(bit)) !== 0n;
    assert.ok(has(VIRTIO_BLK_F_FLUSH) && has(VIRTIO_BLK_F_DISCARD));
    assert.ok(has(VIRTIO_BLK_F_WRITE_ZEROES) && !has(VIRTIO_BLK_F_RO));
  });
  await withDisk({ readOnly: true }, ({ backend }) => {
    const has = (bit: number) => (backend.features & featureBit(bit)) !== 0n;
    assert.ok(has(VIRTIO_BLK_F_RO) && has(VIRTIO_BLK_F_FLUSH));
    assert.ok(!has(VIRTIO_BLK_F_DISCARD) && !has(VIRTIO_BLK_F_WRITE_ZEROES));
  });
  await withDisk({ sparse: false }, ({ backend }) => {
    assert.equal(backend.features & featureBit(VIRTIO_BLK_F_DISCARD), 0n);
    assert.equal(new DataView(backend.configBytes.buffer).getUint8(56), 0, "may not unmap");
  });
});

Deno.test("virtio-blk: a read fills data split over three buffers; used = data + status", async () => {
  await withDisk({}, async (disk) => {
    const { placed, status, len } = disk.one(VIRTIO_BLK_T_IN, 3, { in: [512, 1024, 512] });
    assert.equal(status, VIRTIO_BLK_S_OK);
    assert.equal(len, 2048 + 1);
    const want = await disk.image(3 * SECTOR, 2048);
    const got = [
      ...disk.driver.mem.read(placed.data[0], 512),
      ...disk.driver.mem.read(placed.data[1], 1024),
      ...disk.driver.mem.read(placed.data[2], 512),
    ];
    assert.deepEqual(new Uint8Array(got), want);
  });
});

Deno.test("virtio-blk: a write reaches the image; the status may share the data's buffer", async () => {
  await withDisk({}, async (disk) => {
    const data = pattern(1536, 9);
    const { status, len } = disk.one(VIRTIO_BLK_T_OUT, 10, {
      out: [data.subarray(0, 1024), data.subarray(1024)],
    });
    assert.equal(status, VIRTIO_BLK_S_OK);
    assert.equal(len, 1, "only the status is written");
    assert.deepEqual(await disk.image(10 * SECTOR, 1536), data);
    assert.deepEqual(await disk.image(0, 10 * SECTOR), pattern(10 * SECTOR, 1), "nothing else");
    // Linux may put the status byte at the end of the last data buffer (one writable buffer).
    const mem = disk.driver.mem;
    const header = disk.driver.buffer(16);
    mem.writeU32(header, VIRTIO_BLK_T_IN);
    mem.writeU64(header + 8, 10n);
    const buffer = disk.driver.buffer(513, 0xee);
    const head = disk.driver.add([{ addr: header, len: 16 }, {
      addr: buffer,
      len: 513,
      write: true,
    }]);
    assert.deepEqual(disk.run(), [{ id: head, len: 513 }]);
    assert.deepEqual(mem.read(buffer, 512), data.subarray(0, 512));
    assert.equal(mem.readU8(buffer + 512), VIRTIO_BLK_S_OK);
  });
});

Deno.test("virtio-blk: served synchronously (async-executor=epoll), requests complete in order", async () => {
  await withDisk({ engine: "epoll" }, async (disk) => {
    const a = disk.add(VIRTIO_BLK_T_OUT, 0, { out: [pattern(512, 2)] });
    const b = disk.add(VIRTIO_BLK_T_OUT, 1, { out: [pattern(512, 3)] });
    const f = disk.add(VIRTIO_BLK_T_FLUSH, 0, {});
    const r = disk.add(VIRTIO_BLK_T_IN, 0, { in: [1024] });
    assert.deepEqual(disk.run().map((u) => u.id), [a.head, b.head, f.head, r.head]);
    for (const placed of [a, b, f, r]) assert.equal(disk.status(placed), VIRTIO_BLK_S_OK);
    const written = new Uint8Array([...pattern(512, 2), ...pattern(512, 3)]);
    assert.deepEqual(disk.driver.mem.read(r.data[0], 1024), written, "read sees the writes");
    assert.deepEqual(await disk.image(0, 1024), written);
    assert.equal(disk.backend.asynchronous, false, "no ring was set up");
  });
});

Deno.test("virtio-blk: GET_ID returns the id NUL-padded to 20 bytes, or what fits", async () => {
  await withDisk({ id: "disk-serial-7" }, (disk) => {
    const { placed, status, len } = disk.one(VIRTIO_BLK_T_GET_ID, 0, { in: [20] });
    assert.equal(status, VIRTIO_BLK_S_OK);
    assert.equal(len, 21);
    const id = disk.driver.mem.read(placed.data[0], 20);
    assert.equal(new TextDecoder().decode(id.subarray(0, 13)), "disk-serial-7");
    assert.ok(id.subarray(13).every((b) => b === 0));
    const short = disk.one(VIRTIO_BLK_T_GET_ID, 0, { in: [4] });
    assert.equal(short.len, 5);
    assert.equal(new TextDecoder().decode(disk.driver.mem.read(short.placed.data[0], 4)), "disk");
  });
});

Deno.test("virtio-blk: a read-only disk refuses writes, discards and zeroing, untouched", async () => {
  await withDisk({ readOnly: true }, async (disk) => {
    const before = await disk.image();
    assert.equal(
      disk.one(VIRTIO_BLK_T_OUT, 0, { out: [pattern(512, 5)] }).status,
      VIRTIO_BLK_S_IOERR,
    );
    const segment = BlockDisk.segment(0, 8);
    assert.equal(
      disk.one(VIRTIO_BLK_T_WRITE_ZEROES, 0, { out: [segment] }).status,
      VIRTIO_BLK_S_IOERR,
    );
    assert.equal(disk.one(VIRTIO_BLK_T_DISCARD, 0, { out: [segment] }).status, VIRTIO_BLK_S_IOERR);
    assert.equal(disk.one(VIRTIO_BLK_T_FLUSH, 0).status, VIRTIO_BLK_S_OK);
    assert.equal(disk.one(VIRTIO_BLK_T_IN, 0, { in: [512] }).status, VIRTIO_BLK_S_OK);
    assert.deepEqual(await disk.image(), before);
  });
});

Deno.test("virtio-blk: the image is opened read-only for a read-only disk", async () => {
  const path = await Deno.makeTempFile();
  await Deno.chmod(path, 0o444);
  try {
    // Root ignores mode bits, so check the descriptor's access mode instead.
    const image = openDiskImage({ path, readOnly: true, direct: false });
    try {
      const flags = (await Deno.readTextFile(`/proc/self/fdinfo/${image.fd}`)).match(
        /flags:\s+(\d+)/,
      );
      assert.ok(flags, "fdinfo has flags");
      assert.equal(parseInt(flags[1], 8) & 3, 0, "O_RDONLY");
    } finally {
      close(image.fd);
    }
  } finally {
    await Deno.remove(path);
  }
});

const BAD_REQUESTS: [string, number, number, Body, number][] = [
  ["a read past the end", VIRTIO_BLK_T_IN, IMAGE_SECTORS - 1, { in: [1024] }, VIRTIO_BLK_S_IOERR],
  [
    "a read starting past the end",
    VIRTIO_BLK_T_IN,
    IMAGE_SECTORS,
    { in: [512] },
    VIRTIO_BLK_S_IOERR,
  ],
  ["a read of part of a sector", VIRTIO_BLK_T_IN, 0, { in: [100] }, VIRTIO_BLK_S_IOERR],
  [
    "a write of part of a sector",
    VIRTIO_BLK_T_OUT,
    0,
    { out: [pattern(700, 4)] },
    VIRTIO_BLK_S_IOERR,
  ],
  [
    "a write past the end",
    VIRTIO_BLK_T_OUT,
    IMAGE_SECTORS,
    { out: [pattern(512, 4)] },
    VIRTIO_BLK_S_IOERR,
  ],
  ["an unknown type", 99, 0, {}, VIRTIO_BLK_S_UNSUPP],
  ["a discard with the unmap flag", VIRTIO_BLK_T_DISCARD, 0, {
    out: [BlockDisk.segment(0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)],
  }, VIRTIO_BLK_S_UNSUPP],
  [
    "a discard past the end",
    VIRTIO_BLK_T_DISCARD,
    0,
    { out: [BlockDisk.segment(60, 8)] },
    VIRTIO_BLK_S_IOERR,
  ],
  ["a discard body that is not whole segments", VIRTIO_BLK_T_DISCARD, 0, {
    out: [new Uint8Array(20)],
  }, VIRTIO_BLK_S_IOERR],
];

for (const [what, type, sector, body, expected] of BAD_REQUESTS) {
  Deno.test(`virtio-blk: ${what} fails with status ${expected} and changes nothing`, async () => {
    await withDisk({}, async (disk) => {
      const before = await disk.image();
      const { status, len } = disk.one(type, sector, body);
      assert.equal(status, expected);
      assert.equal(len, 1, "only the status byte");
      assert.deepEqual(await disk.image(), before);
      assert.equal(
        disk.one(VIRTIO_BLK_T_IN, 0, { in: [512] }).status,
        VIRTIO_BLK_S_OK,
        "still serving",
      );
    });
  });
}

Deno.test("virtio-blk: a sector number near 2^64 is out of range, not wrapped", async () => {
  await withDisk({}, (disk) => {
    assert.equal(
      disk.one(VIRTIO_BLK_T_IN, 0xffff_ffff_ffff_ffffn, { in: [512] }).status,
      VIRTIO_BLK_S_IOERR,
    );
    assert.equal(disk.one(VIRTIO_BLK_T_IN, 1n << 55n, { in: [512] }).status, VIRTIO_BLK_S_IOERR);
  });
});

Deno.test("virtio-blk: a header shorter than 16 bytes, and no status byte at all", async () => {
  await withDisk({}, (disk) => {
    const mem = disk.driver.mem;
    const header = disk.driver.buffer(8);
    const status = disk.driver.buffer(1, 0xff);
    const head = disk.driver.add([{ addr: header, len: 8 }, { addr: status, len: 1, write: true }]);
    assert.deepEqual(disk.run(), [{ id: head, len: 1 }]);
    assert.equal(mem.readU8(status), VIRTIO_BLK_S_IOERR);
    const full = disk.driver.buffer(16);
    const noStatus = disk.driver.add([{ addr: full, len: 16 }]);
    assert.deepEqual(disk.run(), [{ id: noStatus, len: 0 }], "completed, nothing written");
  });
});

Deno.test("virtio-blk: discard punches a hole; write-zeroes zeroes (and unmaps if asked)", async () => {
  await withDisk({ sectors: 2048 }, async (disk) => {
    const blocks = async () => (await Deno.stat(disk.path)).blocks ?? 0;
    const full = await blocks();
    const discard = disk.one(VIRTIO_BLK_T_DISCARD, 0, { out: [BlockDisk.segment(0, 1024)] });
    assert.equal(discard.status, VIRTIO_BLK_S_OK);
    assert.ok(await blocks() <= full - 1024, "512 KiB deallocated");
    assert.ok((await disk.image(0, 1024 * SECTOR)).every((b) => b === 0));
    const zero = disk.one(VIRTIO_BLK_T_WRITE_ZEROES, 0, {
      out: [
        BlockDisk.segment(1100, 8),
        BlockDisk.segment(1200, 16, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
      ],
    });
    assert.equal(zero.status, VIRTIO_BLK_S_OK);
    assert.ok((await disk.image(1100 * SECTOR, 8 * SECTOR)).every((b) => b === 0));
    assert.ok((await disk.image(1200 * SECTOR, 16 * SECTOR)).every((b) => b === 0));
    assert.deepEqual(
      await disk.image(1108 * SECTOR, 92 * SECTOR),
      pattern(2048 * SECTOR, 1).subarray(1108 * SECTOR, 1200 * SECTOR),
    );
    assert.equal((await Deno.stat(disk.path)).size, 2048 * SECTOR, "the size is kept");
  });
});

Deno.test("virtio-blk: a discard on a disk that is not sparse is unsupported", async () => {
  await withDisk({ sparse: false }, async (disk) => {
    const before = await disk.image();
    assert.equal(
      disk.one(VIRTIO_BLK_T_DISCARD, 0, { out: [BlockDisk.segment(0, 8)] }).status,
      VIRTIO_BLK_S_UNSUPP,
    );
    assert.deepEqual(await disk.image(), before);
  });
});

Deno.test("virtio-blk: O_DIRECT reads and writes, aligned or through the bounce buffer", async () => {
  await withDisk({ direct: true }, async (disk) => {
    const data = pattern(4096, 6);
    const write = disk.one(VIRTIO_BLK_T_OUT, 8, { out: [data], aligned: true });
    assert.equal(write.status, VIRTIO_BLK_S_OK);
    assert.equal(write.placed.data[0] % PAGE, 0, "a page-aligned buffer goes straight to the file");
    const aligned = disk.one(VIRTIO_BLK_T_IN, 8, { in: [PAGE], aligned: true });
    assert.deepEqual(disk.driver.mem.read(aligned.placed.data[0], PAGE), data);
    // Buffers right after the 16-byte header are not 512-aligned: they take the bounce buffer.
    const odd = disk.one(VIRTIO_BLK_T_IN, 8, { in: [1536, 2560] });
    assert.equal(odd.status, VIRTIO_BLK_S_OK);
    const got = [
      ...disk.driver.mem.read(odd.placed.data[0], 1536),
      ...disk.driver.mem.read(odd.placed.data[1], 2560),
    ];
    assert.deepEqual(new Uint8Array(got), data);
    assert.equal(
      disk.one(VIRTIO_BLK_T_OUT, 20, { out: [pattern(1024, 8)] }).status,
      VIRTIO_BLK_S_OK,
    );
    assert.deepEqual(await disk.image(20 * SECTOR, 1024), pattern(1024, 8));
  });
});

Deno.test("virtio-blk: after a resize the device serves the new capacity, and no more", async () => {
  await withDisk({}, async (disk) => {
    const end = IMAGE_SECTORS;
    assert.equal(disk.one(VIRTIO_BLK_T_IN, end, { in: [512] }).status, VIRTIO_BLK_S_IOERR);
    await Deno.truncate(disk.path, (end + 8) * SECTOR);
    const grown = capacityUpdate((end + 8) * SECTOR);
    const config = new Uint8Array(BLK_CONFIG_SIZE);
    config.set(grown.bytes, grown.offset);
    disk.backend.configChanged(config);
    assert.equal(disk.one(VIRTIO_BLK_T_IN, end, { in: [512] }).status, VIRTIO_BLK_S_OK);
    assert.equal(disk.one(VIRTIO_BLK_T_IN, end + 8, { in: [512] }).status, VIRTIO_BLK_S_IOERR);
    const shrunk = capacityUpdate(8 * SECTOR);
    config.set(shrunk.bytes, shrunk.offset);
    disk.backend.configChanged(config);
    assert.equal(disk.one(VIRTIO_BLK_T_IN, 8, { in: [512] }).status, VIRTIO_BLK_S_IOERR);
    assert.equal(disk.one(VIRTIO_BLK_T_IN, 7, { in: [512] }).status, VIRTIO_BLK_S_OK);
  });
});

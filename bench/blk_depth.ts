/**
 * Queue depth on the host, no VM: our virtio-blk backend serving 4 KiB random reads with O_DIRECT
 * at queue depth 1, 8 and 32, on io_uring (`async-executor=uring`) and on the synchronous path
 * (`async-executor=epoll`), alternating, and the ratio of their IOPS. A split ring in guest RAM
 * (tests/helpers/split_ring_driver.ts) keeps `depth` requests offered: each one completed is
 * offered again at a new random sector, as a driver with that many requests in flight would.
 * On the synchronous path every request is served before `processQueue` returns, so depth only
 * batches doorbells; on io_uring the requests are in flight together.
 *
 * Run: `deno run --allow-all bench/blk_depth.ts [REQUESTS] [DIR]` (the image, 256 MiB of written
 * data, goes in DIR, default /tmp: a file system that takes O_DIRECT, unlike /dev/shm).
 *
 * @module
 */

import { VirtQueue } from "../src/devices/virtio/device.ts";
import { BlockBackend, type BlockEngine } from "../src/devices/virtio/block/device.ts";
import { VIRTIO_BLK_T_IN } from "../src/devices/virtio/block/config.ts";
import { openDiskImage } from "../src/disk/image.ts";
import { close, EFD_NONBLOCK, eventfd } from "../src/ffi/libc.ts";
import { PollSet } from "../src/ffi/poll.ts";
import { blockSpec } from "../tests/helpers/block_disk.ts";
import { DATA, Driver } from "../tests/helpers/split_ring_driver.ts";
import { median } from "./stats.ts";

const REQUESTS = Number(Deno.args[0] ?? 20000);
const DIR = Deno.args[1] ?? "/tmp";
const PAGE = 4096;
const SECTOR = 512;
const IMAGE_BYTES = 256 << 20;
const DEPTHS = [1, 8, 32];
const RUNS = 3;
/** Descriptors per request: header, data, status. */
const CHAIN = 3;

const path = await Deno.makeTempFile({ dir: DIR, prefix: "blk-depth-" });
{
  const chunk = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
  const file = await Deno.open(path, { write: true });
  for (let at = 0; at < IMAGE_BYTES; at += chunk.length) await file.write(chunk);
  file.syncSync();
  file.close();
}
const image = openDiskImage({ path, readOnly: false, direct: true });
const eventFd = eventfd(0, EFD_NONBLOCK);

/** IOPS of `engine` at `depth` over {@link REQUESTS} reads. */
function measure(engine: BlockEngine, depth: number): number {
  const backend = new BlockBackend(
    blockSpec(image, eventFd, { direct: true, engine }),
  );
  try {
    const driver = new Driver({ size: 256 });
    const queue = new VirtQueue(0, driver.queue);
    const mem = driver.mem;
    const poll = new PollSet([eventFd]);
    let state = 12345;
    /** Offers slot `k`'s request (descriptors 3k…3k+2) at a random 4 KiB-aligned sector. */
    const offer = (k: number) => {
      const header = DATA + k * CHAIN * PAGE;
      state = (state * 1103515245 + 12345) >>> 0;
      mem.writeU32(header, VIRTIO_BLK_T_IN);
      mem.writeU64(header + 8, BigInt((state % (IMAGE_BYTES / PAGE)) * (PAGE / SECTOR)));
      driver.writeChain([
        { addr: header, len: 16 },
        { addr: header + PAGE, len: PAGE, write: true },
        { addr: header + 2 * PAGE, len: 1, write: true },
      ], k * CHAIN);
      driver.offer(k * CHAIN);
    };
    for (let k = 0; k < depth; k++) offer(k);
    let offered = depth;
    let done = 0;
    const t0 = performance.now();
    driver.publish();
    backend.processQueue(0, queue, mem);
    while (done < REQUESTS) {
      const used = driver.used();
      if (used.length === 0) {
        // Only io_uring leaves requests in flight: wait for its eventfd, as the device loop does.
        poll.wait(-1);
        backend.onEvent(0);
        continue;
      }
      for (const { id } of used) {
        done++;
        if (mem.readU8(DATA + (id / CHAIN) * CHAIN * PAGE + 2 * PAGE) !== 0) {
          throw new Error("a read failed");
        }
        if (offered < REQUESTS) {
          offer(id / CHAIN);
          offered++;
        }
      }
      driver.publish();
      backend.processQueue(0, queue, mem);
    }
    return REQUESTS / ((performance.now() - t0) / 1000);
  } finally {
    backend.close();
  }
}

try {
  console.log(`4 KiB random O_DIRECT reads in ${DIR}, ${REQUESTS} per run, median of ${RUNS}:`);
  console.log("  depth   io_uring IOPS   sync IOPS   ratio");
  measure("uring", 8); // warm up the JIT
  for (const depth of DEPTHS) {
    const uring: number[] = [];
    const sync: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      uring.push(measure("uring", depth));
      sync.push(measure("epoll", depth));
    }
    const [u, s] = [median(uring), median(sync)];
    console.log(
      `  ${String(depth).padStart(5)} ${u.toFixed(0).padStart(15)} ${s.toFixed(0).padStart(11)}` +
        ` ${(u / s).toFixed(2).padStart(7)}×`,
    );
  }
} finally {
  close(eventFd);
  close(image.fd);
  await Deno.remove(path);
}

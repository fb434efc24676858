/// <reference lib="deno.worker" />
// Rebuilds guest memory from the share it is sent, reads what the main thread wrote and
// writes bytes back, as a vCPU or device Worker would.

import { GuestMemory, type GuestMemoryShare } from "../../src/memory.ts";

/** What the main thread asks of this Worker. */
export interface MemoryJob {
  shared: GuestMemoryShare;
  /** A u64 to read (the main thread wrote it). */
  readAt: number;
  /** Bytes to write into guest RAM. */
  write: { address: number; data: Uint8Array };
}

/** What this Worker answers. */
export interface MemoryReply {
  value: bigint;
  size: number;
}

self.onmessage = (event: MessageEvent<MemoryJob>) => {
  const { shared, readAt, write } = event.data;
  const mem = new GuestMemory(shared);
  const reply: MemoryReply = { value: mem.readU64(readAt), size: mem.size };
  mem.write(write.address, write.data);
  self.postMessage(reply);
};

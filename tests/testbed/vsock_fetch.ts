/**
 * The vhost-vsock scenario's fetcher, in L1: COUNT connections at once to guest CID:PORT through
 * the TypeScript API (`VhostVsockHost`, what `vm.vsock` gives for vhost-vsock), each read to its
 * end; prints `l1_vsock_fetched=<connections read> <distinct sha256s>`.
 *
 * Run: `deno run --allow-all tests/testbed/vsock_fetch.ts CID PORT COUNT`.
 *
 * @module
 */

import { VhostVsockHost } from "../../mod.ts";

const [cid, port, count] = Deno.args.map(Number);
const host = new VhostVsockHost(cid);
const hashes = await Promise.all(Array.from({ length: count }, async () => {
  const conn = await host.connect(port);
  const parts: Uint8Array[] = [];
  for await (const part of conn.readable) parts.push(part);
  conn.close();
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}));
console.log(`l1_vsock_fetched=${hashes.length} ${[...new Set(hashes)].sort().join(" ")}`);

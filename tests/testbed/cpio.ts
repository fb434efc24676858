/**
 * A writer for the "newc" cpio format the Linux initramfs unpacker reads
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Building the archive in memory
 * means no file tree is ever made on the host: no device nodes to create and no absolute
 * busybox links to write through.
 *
 * @module
 */

/** One archive member. */
export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; data: Uint8Array; mode?: number }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "chardev"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const encoder = new TextEncoder();

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/**
 * Serialises `entries` (in order; parents before children) into a newc archive with its
 * `TRAILER!!!`. Owner is root, mtime 0, so the same inputs give the same bytes.
 */
export function buildCpio(entries: readonly CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (bytes: Uint8Array) => {
    parts.push(bytes);
    size += bytes.length;
  };
  const member = (
    path: string,
    mode: number,
    data: Uint8Array,
    ino: number,
    rdev: [number, number] = [0, 0],
  ) => {
    const name = encoder.encode(path.replace(/^\/+/, "") + "\0");
    const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], name.length, 0];
    push(encoder.encode("070701" + fields.map(hex8).join("")));
    push(name);
    push(new Uint8Array(pad4(110 + name.length)));
    push(data);
    push(new Uint8Array(pad4(data.length)));
  };
  let ino = 1;
  for (const e of entries) {
    switch (e.kind) {
      case "dir":
        member(e.path, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(), ino++);
        break;
      case "file":
        member(e.path, S_IFREG | (e.mode ?? 0o644), e.data, ino++);
        break;
      case "symlink":
        member(e.path, S_IFLNK | 0o777, encoder.encode(e.target), ino++);
        break;
      case "chardev":
        member(e.path, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(), ino++, [e.major, e.minor]);
        break;
    }
  }
  member("TRAILER!!!", 0, new Uint8Array(), 0);
  const out = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

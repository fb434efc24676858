/**
 * Builds the nested Linux test bed's assets from Debian packages (shared/design.md, section 3):
 * L1 = Debian's generic kernel (ELF vmlinux, for QEMU's fast PVH entry) with a busybox
 * initramfs that loads kvm_amd and 9p and runs scenarios ({@link ./l1_init.sh}); L2 =
 * Debian's cloud kernel (bzImage and ELF vmlinux) with a busybox test agent
 * ({@link ./l2_init.sh}), and the same agent with the host's network tools (iperf3) and
 * their shared libraries.
 *
 * Needs root (apt). Everything lands in `.cache/testbed/` and is rebuilt only when a package
 * version or this recipe (these sources) changes. Packages are `apt-get download`ed and
 * unpacked with `dpkg-deb -x`, never installed, except the host tools QEMU, xz, lz4, zstd.
 *
 * @module
 */

import { buildCpio, type CpioEntry } from "./cpio.ts";
import { exists } from "../helpers/paths.ts";

/** The project root (two levels above this file). */
export const PROJECT_ROOT: string = decodeURIComponent(
  new URL("../..", import.meta.url).pathname,
).replace(/\/$/, "");
/** This directory, with a trailing slash. */
const HERE = decodeURIComponent(new URL(".", import.meta.url).pathname);
/** Where the test bed caches packages, assets and per-run directories. */
export const CACHE_DIR = `${PROJECT_ROOT}/.cache/testbed`;

/** Everything the harness needs to boot the bed; all paths are absolute host paths. */
export interface Assets {
  /** Directory holding the built files below (shared into L1 as the `assets` tag). */
  readonly dir: string;
  /** L1 kernel: ELF vmlinux of Debian's generic kernel (booted through its PVH note). */
  readonly l1Kernel: string;
  /** L1 initramfs (uncompressed newc cpio). */
  readonly l1Initrd: string;
  /** L2 kernel: Debian's cloud kernel as shipped (bzImage). */
  readonly l2Kernel: string;
  /** L2 kernel: the ELF vmlinux inside {@link l2Kernel}. */
  readonly l2Vmlinux: string;
  /** L2 initramfs with the test agent (uncompressed newc cpio). */
  readonly l2Initrd: string;
  /**
   * {@link l2Initrd} plus the {@link L2_TOOLS} in `/bin`, with their shared libraries at the
   * paths the host's loader found them (8 MB more, so only for those who run them).
   */
  readonly l2ToolsInitrd: string;
  /** The host's qemu-system-x86_64. */
  readonly qemu: string;
  /** Versions the assets were built from: Debian package name to version. */
  readonly versions: Readonly<Record<string, string>>;
}

/** Options for {@link ensureAssets}. */
export interface EnsureAssetsOptions {
  /** Cache directory (default {@link CACHE_DIR}). */
  cacheDir?: string;
  /** Progress messages (default: to stderr). */
  log?: (message: string) => void;
}

/** Host tools needed, by command, with the Debian package providing each. */
const HOST_TOOLS: Readonly<Record<string, string>> = {
  "qemu-system-x86_64": "qemu-system-x86",
  xz: "xz-utils",
  lz4: "lz4",
  zstd: "zstd",
  gzip: "gzip",
  bzip2: "bzip2",
};
/**
 * Host programs the L2 tools initramfs carries, by command, with the Debian package providing
 * each (installed on the host when missing; L1 runs the same through the host's /usr): iperf3
 * for the network benchmark.
 */
const L2_TOOLS: Readonly<Record<string, string>> = { iperf3: "iperf3" };
/** Kernel metapackages, resolved to the versioned image package they depend on. */
const L1_KERNEL_META = "linux-image-amd64";
const L2_KERNEL_META = "linux-image-cloud-amd64";
/** Static busybox, downloaded and unpacked (installing it would replace the host's busybox). */
const BUSYBOX_PACKAGE = "busybox-static";

/**
 * L1 modules (with their dependencies): KVM on emulated SVM, virtfs, TUN for network tests, the
 * kernel's vhost back ends (/dev/vhost-net, /dev/vhost-vsock) and vsock's loopback (CID 1, for
 * the AF_VSOCK tests), which our own hosts lack.
 * kvm_amd is loaded last, so a failure to load it leaves the rest in place.
 */
const L1_MODULES = [
  "virtio_pci",
  "9pnet_virtio",
  "9p",
  "tun",
  "vhost_net",
  "vhost_vsock",
  "vsock_loopback",
  "kvm_amd",
];
/** L2 modules for the virtio device tests; the agent loads each one present. */
const L2_MODULES = [
  "virtio_pci",
  "virtio_blk",
  "virtio_net",
  "virtio_console",
  "virtio-rng",
  "vmw_vsock_virtio_transport",
  "virtio_balloon",
  // The ACPI power button (PNP0C0C) and the input events it reports KEY_POWER through.
  "button",
  "evdev",
];
/**
 * L1 mounts the host's /usr (virtfs tag `usr`) for QEMU, Deno and their libraries; the
 * merged-/usr links make their absolute paths (ELF interpreter, library dirs) resolve.
 */
const L1_USR_LINKS: CpioEntry[] = [
  { kind: "dir", path: "usr" },
  { kind: "symlink", path: "lib", target: "usr/lib" },
  { kind: "symlink", path: "lib64", target: "usr/lib64" },
];
/** Files whose contents are part of the cache key besides package versions. */
const RECIPE_FILES = ["assets.ts", "cpio.ts", "l1_init.sh", "l2_init.sh"];
/** The agent's scripts (`agent.run=NAME` runs `/agent/NAME.sh`), in this directory. */
const AGENT_DIR = "agent";

/**
 * The {@link L2_TOOLS} and every file they load at start (the ELF interpreter and the shared
 * libraries `ldd` lists), as absolute host paths: the program's own path first.
 */
async function toolFiles(): Promise<string[][]> {
  return await Promise.all(
    Object.keys(L2_TOOLS).map(async (cmd) => {
      const program = await which(cmd);
      if (!program) throw new Error(`${cmd} is not installed (Debian ${L2_TOOLS[cmd]})`);
      const loaded = [...(await run("ldd", [program])).matchAll(/(?:=> )?(\/\S+) \(0x/g)];
      return [program, ...loaded.map((m) => m[1])];
    }),
  );
}

/**
 * The tools' files with their sizes and mtimes, for the cache key: they are the host's, and an
 * upgrade changes them without changing any package version the bed resolves.
 */
async function toolsFingerprint(files: string[][]): Promise<string> {
  const stats = await Promise.all(
    files.flat().map(async (path) => {
      const info = await Deno.stat(path);
      return `${path}:${info.size}:${info.mtime?.getTime()}`;
    }),
  );
  return stats.join("\n");
}

/** Cpio entries for the tools (in /bin) and their libraries (at their own paths), parents first. */
async function toolEntries(files: string[][]): Promise<CpioEntry[]> {
  const entries: CpioEntry[] = [];
  const dirs = new Set(["bin"]);
  const add = async (path: string, data: string) => {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!dirs.has(dir)) entries.push({ kind: "dir", path: dir });
      dirs.add(dir);
    }
    entries.push({ kind: "file", path, data: await Deno.readFile(data), mode: 0o755 });
  };
  const libraries = new Set<string>();
  for (const [program, ...loaded] of files) {
    await add(`bin/${program.slice(program.lastIndexOf("/") + 1)}`, program);
    for (const lib of loaded) {
      if (!libraries.has(lib)) await add(lib.slice(1), lib);
      libraries.add(lib);
    }
  }
  return entries;
}

/** The agent's files ending in `extension`, by name, sorted. */
async function agentFiles(extension: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(`${HERE}${AGENT_DIR}`)) {
    if (e.isFile && e.name.endsWith(extension)) names.push(e.name);
  }
  return names.sort();
}

/** The agent's scripts (`NAME.sh`). */
const agentScripts = () => agentFiles(".sh");
/**
 * The agent's C programs (`NAME.c`: what busybox cannot do, such as AF_VSOCK), built static with
 * the host's gcc into /bin/NAME of the L2 initramfs.
 */
const agentPrograms = () => agentFiles(".c");

/** `/bin/NAME` for each of the agent's C programs, compiled in `work`. */
async function programEntries(work: string): Promise<CpioEntry[]> {
  const entries: CpioEntry[] = [];
  for (const source of await agentPrograms()) {
    const name = source.slice(0, -".c".length);
    const exe = `${work}/${name}`;
    await run("gcc", [
      "-static",
      "-O2",
      "-Wall",
      "-Werror",
      "-o",
      exe,
      `${HERE}${AGENT_DIR}/${source}`,
    ]);
    entries.push({
      kind: "file",
      path: `bin/${name}`,
      data: await Deno.readFile(exe),
      mode: 0o755,
    });
  }
  return entries;
}

/** `/agent` with the agent's scripts, for the L2 initramfs. */
async function agentEntries(): Promise<CpioEntry[]> {
  const entries: CpioEntry[] = [{ kind: "dir", path: AGENT_DIR }];
  for (const name of await agentScripts()) {
    const data = await Deno.readFile(`${HERE}${AGENT_DIR}/${name}`);
    entries.push({ kind: "file", path: `${AGENT_DIR}/${name}`, data, mode: 0o644 });
  }
  return entries;
}

const decoder = new TextDecoder();

/** Runs a command; returns its stdout, throws with its stderr on failure. */
async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${decoder.decode(out.stderr)}`);
  }
  return decoder.decode(out.stdout);
}

/** The first directory on PATH holding `cmd`, or undefined. */
async function which(cmd: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    if (dir && await exists(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  }
  return undefined;
}

async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** apt, running `apt-get update` at most once per process and only when needed. */
class Apt {
  #updated = false;
  constructor(private readonly log: (message: string) => void) {}

  async update(): Promise<void> {
    if (this.#updated) return;
    this.log("apt-get update");
    await run("apt-get", ["update", "-q"]);
    this.#updated = true;
  }

  async install(packages: string[]): Promise<void> {
    await this.update();
    this.log(`apt-get install ${packages.join(" ")}`);
    await run("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...packages]);
  }

  /** Runs `fn`; on failure updates the package lists once and tries again. */
  async retryAfterUpdate<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (this.#updated) throw e;
      await this.update();
      return await fn();
    }
  }

  /** The candidate versions of `packages` (from the local lists). */
  async candidates(packages: string[]): Promise<string[]> {
    const policy = await run("apt-cache", ["policy", ...packages]);
    return packages.map((pkg) => {
      const section = policy.split(/^(?=\S)/m).find((s) => s.startsWith(`${pkg}:`)) ?? "";
      const version = /Candidate: (\S+)/.exec(section)?.[1];
      if (!version || version === "(none)") throw new Error(`no candidate for ${pkg}`);
      return version;
    });
  }

  /** The versioned linux-image packages the kernel metapackages `metas` depend on. */
  async resolveMetas(metas: string[]): Promise<string[]> {
    const deps = await run("apt-cache", ["depends", "--important", ...metas]);
    return metas.map((meta) => {
      const section = deps.split(/^(?=\S)/m).find((s) => s.startsWith(`${meta}\n`)) ?? "";
      const image = /Depends: (linux-image-\S+)/.exec(section)?.[1];
      if (!image) throw new Error(`cannot resolve ${meta}: ${deps}`);
      return image;
    });
  }

  /** Downloads `pkg=version` into `dir` unless present; returns the .deb path. */
  async download(pkg: string, version: string, dir: string): Promise<string> {
    const file = `${dir}/${pkg}_${version.replace(":", "%3a")}_amd64.deb`;
    if (await exists(file)) return file;
    this.log(`apt-get download ${pkg}=${version}`);
    await run(
      "apt-get",
      ["download", "-q", "-o", "APT::Sandbox::User=root", `${pkg}=${version}`],
      dir,
    );
    if (!await exists(file)) throw new Error(`apt-get download did not produce ${file}`);
    return file;
  }
}

/** What `assets/manifest.json` records about a build. */
interface Manifest {
  /** Hash of {@link RECIPE_FILES} and the agent's scripts, and {@link toolsFingerprint}. */
  recipe: string;
  /** {@link listsFingerprint} when the versions were last resolved. */
  lists: string;
  /** Debian package name to version. */
  versions: Record<string, string>;
}

/** Names, sizes and mtimes of apt's package lists: changes whenever `apt-get update` does. */
async function listsFingerprint(): Promise<string> {
  const dir = "/var/lib/apt/lists";
  const parts: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.includes("_Packages")) continue;
      const info = await Deno.stat(`${dir}/${e.name}`);
      parts.push(`${e.name}:${info.size}:${info.mtime?.getTime()}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return await sha256Hex(parts.sort().join("\n"));
}

/** Decompressors for the kernel's payload formats, by magic (scripts/extract-vmlinux). */
const DECOMPRESSORS: { magic: number[]; cmd: string; args: string[]; sizeTrailer: boolean }[] = [
  { magic: [0x1f, 0x8b, 0x08], cmd: "gzip", args: ["-dc"], sizeTrailer: false },
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], cmd: "xz", args: ["-dc"], sizeTrailer: true },
  { magic: [0x42, 0x5a, 0x68], cmd: "bzip2", args: ["-dc"], sizeTrailer: true },
  { magic: [0x5d, 0x00, 0x00], cmd: "xz", args: ["--format=lzma", "-dc"], sizeTrailer: true },
  { magic: [0x89, 0x4c, 0x5a, 0x4f], cmd: "lzop", args: ["-dc"], sizeTrailer: true },
  { magic: [0x02, 0x21, 0x4c, 0x18], cmd: "lz4", args: ["-dc"], sizeTrailer: true },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], cmd: "zstd", args: ["-dc"], sizeTrailer: true },
];

/** True when `elf` is a whole 64-bit ELF file (its section headers fit inside it). */
function isCompleteElf64(elf: Uint8Array): boolean {
  if (elf.length < 64 || elf[0] !== 0x7f || elf[1] !== 0x45 || elf[2] !== 0x4c) return false;
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const shoff = Number(view.getBigUint64(0x28, true));
  return elf[4] === 2 && shoff + view.getUint16(0x3a, true) * view.getUint16(0x3c, true) <=
      elf.length;
}

/**
 * The ELF vmlinux inside a bzImage: locates the compressed payload through the setup
 * header (`payload_offset`/`payload_length`, boot protocol 2.08+), picks the decompressor by
 * its magic and drops the 4-byte size the kernel build appends to non-gzip payloads.
 */
export async function extractVmlinux(bzImage: Uint8Array): Promise<Uint8Array> {
  const view = new DataView(bzImage.buffer, bzImage.byteOffset, bzImage.byteLength);
  if (view.getUint32(0x202, true) !== 0x53726448) throw new Error("not a bzImage (no HdrS)");
  if (view.getUint16(0x206, true) < 0x208) throw new Error("boot protocol < 2.08: no payload");
  const setupSects = bzImage[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + view.getUint32(0x248, true);
  const payload = bzImage.subarray(start, start + view.getUint32(0x24c, true));
  const codec = DECOMPRESSORS.find((d) => d.magic.every((b, i) => payload[i] === b));
  if (!codec) throw new Error(`unknown payload magic ${payload.subarray(0, 6)}`);
  const input = codec.sizeTrailer ? payload.subarray(0, payload.length - 4) : payload;
  const child = new Deno.Command(codec.cmd, {
    args: codec.args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const writing = writer.write(input).then(() => writer.close()).catch(() => {});
  const out = await child.output();
  await writing;
  if (!isCompleteElf64(out.stdout)) {
    throw new Error(
      `${codec.cmd} ${codec.args.join(" ")} gave no vmlinux: ${decoder.decode(out.stderr)}`,
    );
  }
  return out.stdout;
}

/** A kernel's modules: name (with `_`) to file, `depends=` lists, and the built-in ones. */
interface ModuleTree {
  files: Map<string, string>;
  builtin: Set<string>;
}

const modName = (name: string) => name.replace(/-/g, "_");

async function readModuleTree(modulesDir: string): Promise<ModuleTree> {
  const files = new Map<string, string>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ko")) files.set(modName(e.name.slice(0, -3)), path);
    }
  };
  await walk(`${modulesDir}/kernel`);
  const builtinList = await Deno.readTextFile(`${modulesDir}/modules.builtin`);
  const builtin = new Set(
    builtinList.split("\n").filter(Boolean).map((p) =>
      modName(p.replace(/^.*\//, "").slice(0, -3))
    ),
  );
  return { files, builtin };
}

/** The `depends=` entry of a module's .modinfo section. */
function moduleDepends(ko: Uint8Array): string[] {
  const key = new TextEncoder().encode("depends=");
  outer: for (let i = 1; i + key.length < ko.length; i++) {
    if (ko[i - 1] !== 0) continue;
    for (let j = 0; j < key.length; j++) if (ko[i + j] !== key[j]) continue outer;
    const end = ko.indexOf(0, i);
    const value = decoder.decode(ko.subarray(i + key.length, end));
    return value ? value.split(",").map(modName) : [];
  }
  return [];
}

/** `wanted` and their dependencies as cpio entries under /modules, plus /modules/order. */
async function moduleEntries(tree: ModuleTree, wanted: string[]): Promise<CpioEntry[]> {
  const order: string[] = [];
  const entries: CpioEntry[] = [{ kind: "dir", path: "modules" }];
  const visit = async (name: string) => {
    if (order.includes(name) || tree.builtin.has(name)) return;
    const file = tree.files.get(name);
    if (!file) throw new Error(`module ${name} is neither built in nor in the package`);
    const data = await Deno.readFile(file);
    for (const dep of moduleDepends(data)) await visit(dep);
    order.push(name);
    entries.push({ kind: "file", path: `modules/${name}.ko`, data });
  };
  for (const name of wanted.map(modName)) await visit(name);
  const orderText = order.map((m) => m + "\n").join("");
  entries.push({ kind: "file", path: "modules/order", data: new TextEncoder().encode(orderText) });
  return entries;
}

/** The skeleton of a busybox initramfs: directories, /dev/console, busybox and its links. */
async function busyboxEntries(busybox: string, init: string): Promise<CpioEntry[]> {
  const applets = (await run(busybox, ["--list"])).split("\n").filter((a) => a && a !== "busybox");
  return [
    ...["bin", "dev", "proc", "sys", "tmp", "root", "mnt", "etc"].map((path): CpioEntry => ({
      kind: "dir",
      path,
    })),
    { kind: "symlink", path: "sbin", target: "bin" },
    { kind: "chardev", path: "dev/console", major: 5, minor: 1 },
    { kind: "chardev", path: "dev/null", major: 1, minor: 3, mode: 0o666 },
    { kind: "file", path: "bin/busybox", data: await Deno.readFile(busybox), mode: 0o755 },
    ...applets.map((a): CpioEntry => ({ kind: "symlink", path: `bin/${a}`, target: "busybox" })),
    { kind: "file", path: "init", data: await Deno.readFile(`${HERE}${init}`), mode: 0o755 },
    {
      kind: "file",
      path: "etc/passwd",
      data: new TextEncoder().encode("root:x:0:0:root:/root:/bin/sh\n"),
    },
    { kind: "file", path: "etc/group", data: new TextEncoder().encode("root:x:0:\n") },
  ];
}

/** Unpacks `deb` into a fresh `dir`. */
async function unpack(deb: string, dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  await run("dpkg-deb", ["-x", deb, dir]);
}

let pending: Promise<Assets> | undefined;

/**
 * Makes sure the test bed's assets exist and are current, building what is missing, and
 * returns their paths. Runs once per process: later calls share the first successful call's
 * result (and its options).
 */
export function ensureAssets(options: EnsureAssetsOptions = {}): Promise<Assets> {
  pending ??= buildAssets(options).catch((e) => {
    pending = undefined;
    throw e;
  });
  return pending;
}

async function buildAssets(options: EnsureAssetsOptions): Promise<Assets> {
  const log = options.log ?? ((m: string) => console.error(`testbed: ${m}`));
  const cacheDir = options.cacheDir ?? CACHE_DIR;
  const apt = new Apt(log);

  const missing: string[] = [];
  for (const [cmd, pkg] of Object.entries({ ...HOST_TOOLS, ...L2_TOOLS })) {
    if (!await which(cmd) && !missing.includes(pkg)) missing.push(pkg);
  }
  if (missing.length > 0) await apt.install(missing);
  const qemu = (await which("qemu-system-x86_64"))!;

  const recipeFiles = [
    ...RECIPE_FILES,
    ...(await agentScripts()).map((name) => `${AGENT_DIR}/${name}`),
    ...(await agentPrograms()).map((name) => `${AGENT_DIR}/${name}`),
  ];
  const tools = await toolFiles();
  const recipe = await sha256Hex(
    (await Promise.all(
      recipeFiles.map(async (f) => `${f}\0${await Deno.readTextFile(`${HERE}${f}`)}`),
    ))
      .join("\0") + `\0${await toolsFingerprint(tools)}`,
  );
  const dir = `${cacheDir}/assets`;
  const assets = (versions: Record<string, string>): Assets => ({
    dir,
    l1Kernel: `${dir}/l1-vmlinux`,
    l1Initrd: `${dir}/l1-initramfs.cpio`,
    l2Kernel: `${dir}/l2-bzImage`,
    l2Vmlinux: `${dir}/l2-vmlinux`,
    l2Initrd: `${dir}/l2-initramfs.cpio`,
    l2ToolsInitrd: `${dir}/l2-tools-initramfs.cpio`,
    qemu,
    versions,
  });
  const manifestPath = `${dir}/manifest.json`;
  let manifest: Manifest | undefined;
  try {
    manifest = JSON.parse(await Deno.readTextFile(manifestPath));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  // apt-cache takes a second a call (Docker images keep no pkgcache.bin): skip it while the
  // package lists are those the assets were built from.
  if (manifest?.recipe === recipe && manifest.lists === await listsFingerprint()) {
    return assets(manifest.versions);
  }

  const packages = await apt.retryAfterUpdate(async () => {
    const names = [...await apt.resolveMetas([L1_KERNEL_META, L2_KERNEL_META]), BUSYBOX_PACKAGE];
    const versions = await apt.candidates(names);
    return names.map((name, i) => ({ name, version: versions[i] }));
  });
  const [l1Pkg, l2Pkg] = packages;
  const versions: Record<string, string> = {};
  for (const p of packages) versions[p.name] = p.version;
  const lists = await listsFingerprint();
  if (
    manifest?.recipe === recipe && JSON.stringify(manifest.versions) === JSON.stringify(versions)
  ) {
    await Deno.writeTextFile(manifestPath, JSON.stringify({ ...manifest, lists }, null, 2));
    return assets(versions);
  }

  log(`building assets for ${JSON.stringify(versions)}`);
  const debDir = `${cacheDir}/debs`;
  await Deno.mkdir(debDir, { recursive: true });
  const debs: string[] = [];
  for (const p of packages) {
    debs.push(await apt.retryAfterUpdate(() => apt.download(p.name, p.version, debDir)));
  }
  for (const f of (await Array.fromAsync(Deno.readDir(debDir))).map((e) => e.name)) {
    if (!debs.includes(`${debDir}/${f}`)) await Deno.remove(`${debDir}/${f}`);
  }

  const work = `${cacheDir}/build`;
  const out = `${cacheDir}/assets.new`;
  await Deno.remove(out, { recursive: true }).catch(() => {});
  await Deno.mkdir(out, { recursive: true });
  const roots = [`${work}/l1`, `${work}/l2`, `${work}/busybox`];
  await Promise.all(debs.map((deb, i) => unpack(deb, roots[i])));
  const busybox = `${roots[2]}/bin/busybox`;

  for (
    const [level, pkg, root, init, modules] of [
      ["l1", l1Pkg, roots[0], "l1_init.sh", L1_MODULES],
      ["l2", l2Pkg, roots[1], "l2_init.sh", L2_MODULES],
    ] as const
  ) {
    const kver = pkg.name.replace(/^linux-image-/, "");
    const bzImage = await Deno.readFile(`${root}/boot/vmlinuz-${kver}`);
    const vmlinux = await extractVmlinux(bzImage);
    await Deno.writeFile(`${out}/${level}-vmlinux`, vmlinux);
    if (level === "l2") await Deno.writeFile(`${out}/l2-bzImage`, bzImage);
    const tree = await readModuleTree(`${root}/lib/modules/${kver}`);
    const entries = [
      ...await busyboxEntries(busybox, init),
      ...(level === "l1" ? L1_USR_LINKS : [...await agentEntries(), ...await programEntries(work)]),
      ...await moduleEntries(tree, [...modules]),
    ];
    await Deno.writeFile(`${out}/${level}-initramfs.cpio`, buildCpio(entries));
    if (level === "l2") {
      const withTools = [...entries, ...await toolEntries(tools)];
      await Deno.writeFile(`${out}/l2-tools-initramfs.cpio`, buildCpio(withTools));
    }
    log(`${level}: ${kver}, modules ${
      decoder.decode(
        (entries.at(-1) as { data: Uint8Array }).data,
      ).trim().split("\n").join(" ")
    }`);
  }
  const built: Manifest = { recipe, lists, versions };
  await Deno.writeTextFile(`${out}/manifest.json`, JSON.stringify(built, null, 2));
  await Deno.remove(work, { recursive: true });
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(out, dir);
  return assets(versions);
}

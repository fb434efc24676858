/**
 * vsock benchmark (runs in the nested test bed): the same L2 kernel and agent under QEMU with
 * `vhost-vsock-pci` (microvm with PCIe, KVM), our VMM with vhost-vsock (`--vsock cid=N`) and our
 * VMM with the userspace device (`--vsock cid=N,uds-path=PATH`), both jailed, in one L1,
 * alternating. In L2, servers of the agent's (bench/guest/vsock_agent.sh, the static
 * `vsock_peer`); in L1, the client (bench/vsock_l1.py): stream throughput guest→host and
 * host→guest (`--mib` MiB a transfer, the median of `--transfers`), and connect latency (the
 * median of `--connects` connects, each timed until the guest's close arrives).
 *
 * Prints each figure's median over the rounds for each VMM, and the ratios ours vhost / QEMU and
 * ours userspace / ours vhost.
 *
 * Run: `deno run --allow-all bench/vsock.ts [ROUNDS] [--mib M] [--transfers T] [--connects C]`
 * (root; builds the bed on first use; about a minute a VMM a round).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ensureAssets, PROJECT_ROOT } from "../tests/testbed/assets.ts";
import { onConsoleLine, Testbed } from "../tests/testbed/harness.ts";
import { appendToInitrd, median, rotated } from "./bed_lib.ts";

const { values: opts, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    mib: { type: "string", default: "32" },
    transfers: { type: "string", default: "3" },
    connects: { type: "string", default: "50" },
  },
});
const ROUNDS = Number(positionals[0] ?? 2);
const BYTES = Number(opts.mib) * (1 << 20);
const TRANSFERS = Number(opts.transfers);
const CONNECTS = Number(opts.connects);
if (![ROUNDS, BYTES, TRANSFERS, CONNECTS].every((n) => Number.isInteger(n) && n >= 1)) {
  console.error("usage: vsock.ts [ROUNDS] [--mib M] [--transfers T] [--connects C]");
  Deno.exit(2);
}

const HERE = decodeURIComponent(new URL(".", import.meta.url).pathname);
const BUILD = `${HERE}.build/vsock`;
const INITRD = `${BUILD}/initrd.cpio`;
const CLIENT = `python3 "$PROJECT/${HERE.slice(PROJECT_ROOT.length + 1)}vsock_l1.py"`;
/** The guest's CID (one VMM at a time has it) and the userspace device's socket in L1. */
const CID = 5;
const UDS = "/tmp/vsock-bench.sock";
const MEM_MIB = 256;
const GUEST_PARAMS = `quiet reboot=t panic=-1 agent.action=vsockbench agent.bytes=${BYTES} ` +
  `agent.rounds=${TRANSFERS} agent.connects=${CONNECTS}`;
/** The guest's report line the client's run waits for. */
const READY = "@@VSOCK READY";

/** One VMM set-up: its command line in L1 and how the client reaches the guest. */
interface Variant {
  readonly name: string;
  readonly command: string;
  readonly client: string;
}
/** Our VMM, jailed, with `--vsock` `key`s. */
const ours = (keys: string) =>
  [
    `"$DENO" run --allow-all "$PROJECT/main.ts" run --mem ${MEM_MIB} --cpus 1 --no-rng`,
    `--no-balloon --vsock cid=${CID}${keys} -p "${GUEST_PARAMS}" -i "${INITRD}" "$L2_VMLINUX"`,
  ].join(" ");
const VARIANTS: readonly Variant[] = [
  {
    name: "qemu-vhost",
    command: [
      `qemu-system-x86_64 -accel kvm -M microvm,rtc=on,pcie=on -cpu host -m ${MEM_MIB} -smp 1`,
      "-nodefaults -no-user-config -display none -serial stdio -no-reboot",
      `-device vhost-vsock-pci,guest-cid=${CID} -kernel "$L2_VMLINUX" -initrd "${INITRD}"`,
      `-append "console=ttyS0 ${GUEST_PARAMS}"`,
    ].join(" "),
    client: `vsock ${CID}`,
  },
  { name: "vhost", command: ours(""), client: `vsock ${CID}` },
  { name: "userspace", command: ours(`,uds-path=${UDS}`), client: `uds ${UDS}` },
];
/** The ratios printed, `[a, b]` for a/b. */
const RATIOS: readonly (readonly [string, string])[] = [
  ["vhost", "qemu-vhost"],
  ["userspace", "vhost"],
];
const FIGURES = [
  ["g2h", "guest→host Mbit/s"],
  ["h2g", "host→guest Mbit/s"],
  ["connect_us", "connect µs"],
] as const;
type Figure = typeof FIGURES[number][0];

const scenarios = Array.from({ length: ROUNDS }, (_, i) =>
  rotated(VARIANTS, i).map((v) => ({
    name: `${v.name}-${i}`,
    command: onConsoleLine(
      v.command,
      READY,
      `(${CLIENT} ${v.client} ${BYTES} ${TRANSFERS} ${CONNECTS} &)`,
    ),
    timeoutSeconds: 300,
  }))).flat();

await Deno.mkdir(BUILD, { recursive: true });
const assets = await ensureAssets();
await appendToInitrd(assets.l2Initrd, [{
  kind: "file",
  path: "agent/vsockbench.sh",
  data: await Deno.readFile(`${HERE}guest/vsock_agent.sh`),
}], INITRD);
const results = await new Testbed({ assets }).boot(scenarios);

/** Each variant's figures, one record a round. */
const measured = new Map(VARIANTS.map((v) => [
  v.name,
  Array.from({ length: ROUNDS }, (_, i) => {
    const result = results.get(`${v.name}-${i}`);
    const line = result?.lines.find((l) => l.text.startsWith("@@VB "));
    if (line === undefined) throw new Error(`${v.name}-${i}: no figures in\n${result?.output}`);
    return Object.fromEntries(
      line.text.slice(5).split(" ").map((kv) => kv.split("=")).map(([k, v]) => [k, Number(v)]),
    ) as Record<Figure, number>;
  }),
]));

const columns = [...VARIANTS.map((v) => v.name), ...RATIOS.map(([a, b]) => `${a}/${b}`)];
const row = (label: string, cells: string[]) =>
  label.padEnd(20) + cells.map((c, i) => c.padStart(Math.max(columns[i].length, 8) + 2)).join("");
console.log(`vsock: median of ${ROUNDS} rounds (${opts.mib} MiB transfers, ${CONNECTS} connects)`);
console.log(row("", columns));
for (const [figure, label] of FIGURES) {
  const med = (name: string) => median(measured.get(name)!.map((r) => r[figure]));
  console.log(row(label, [
    ...VARIANTS.map((v) => med(v.name).toFixed(1)),
    ...RATIOS.map(([a, b]) => (med(a) / med(b)).toFixed(3)),
  ]));
}

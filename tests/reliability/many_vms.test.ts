/**
 * Many VMs at once (issue 13): rounds of N VMs started together through the real CLI (`crosvm
 * run`), half with the devices jailed (the default), half with `--disable-sandbox`. Each runs the
 * spin guest, which says it runs and counts until stopped: once every guest of the round runs
 * (N VMs held at once), each VM is stopped through its control socket, as `crosvm stop` does.
 * Every VM has that socket in a directory of the test's and a NIC on a TAP the VMM creates
 * (`host-ip`) in a network namespace of the test's, so every kind of host resource a VM holds
 * is there to leak. After each round: every VMM exited 0 with the guest's output, and nothing of
 * them is left: no process (VMM, bwrap, device process: our descendants, and anything naming
 * this checkout's main.ts that was not there before), no socket in the directory, no TAP in the
 * namespace or on the host, and this process has no more descriptors or named mappings than
 * before.
 *
 * `RELIABILITY_VMS=20 RELIABILITY_ROUNDS=10` for the long run (`deno task reliability`).
 */

import assert from "node:assert/strict";
import { connect } from "../../mod.ts";
import { MAIN, spawnCrosvm } from "../helpers/cli_process.ts";
import { settledFdCount } from "../helpers/fds.ts";
import { buildGuest } from "../helpers/guests.ts";
import { HAVE_KVM, NO_KVM } from "../helpers/kvm.ts";
import { descendantPids, processesMentioning } from "../helpers/proc.ts";

/** VMs at once (half of them jailed), and rounds of them. */
const VMS = Number(Deno.env.get("RELIABILITY_VMS") ?? 8);
const ROUNDS = Number(Deno.env.get("RELIABILITY_ROUNDS") ?? 2);
/** Each VM's TAP is on its own /24, 10.78.INDEX.0. */
const MAX_VMS = 256;
/** What tests/guests/spin.S prints on COM1 once it runs (then it counts until stopped). */
const SPIN_RUNNING = "R";
/** The VMM's debug line once its devices are ready and its vCPUs in KVM_RUN (src/vm/vm.ts). */
const VCPUS_RUN = "vCPUs in KVM_RUN";
/** Guest memory per VM, in MiB: the guest needs little, and each VM's RAM is reserved anew. */
const GUEST_MIB = 64;
/** The TAPs the VMM creates for `host-ip` (src/devices/virtio/net/taps.ts). */
const TAP_PREFIX = "vmtap";

async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  assert.ok(out.success, `ip ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout);
}

/** Why the TAPs cannot be had here (root and iproute2's `ip netns`), or undefined. */
async function netnsProblem(): Promise<string | undefined> {
  if (Deno.uid() !== 0) return "needs root to make a network namespace and TAPs";
  try {
    const ok = (await new Deno.Command("ip", { args: ["-V"], stdout: "null" }).output()).success;
    return ok ? undefined : "needs iproute2 (ip)";
  } catch {
    return "needs iproute2 (ip)";
  }
}

const PROBLEM = HAVE_KVM ? await netnsProblem() : NO_KVM;

/** The TAP names `ip -o link` lists (in namespace `ns`, or the host's). */
async function taps(ns?: string): Promise<string[]> {
  const out = await ip(...(ns ? ["-n", ns] : []), "-o", "link");
  return [...out.matchAll(new RegExp(`^\\d+: (${TAP_PREFIX}\\d+)[:@]`, "gm"))].map((m) => m[1]);
}

/**
 * This process's mappings of something named (files, memfds, devices; `/proc/self/maps` lines
 * with a path), sorted: anonymous ones come and go with V8's heap, so they show no leak.
 */
const namedMappings = () =>
  Deno.readTextFileSync("/proc/self/maps").split("\n").flatMap((line) => {
    const path = line.split(/\s+/).slice(5).join(" ");
    return path === "" ? [] : [path];
  }).sort();

/** Whatever of a round's VMs is still on the host. */
interface Leftovers {
  processes: string[];
  sockets: string[];
  taps: string[];
}

/**
 * What was there before the VMs: processes naming this checkout's main.ts (every VMM, bwrap and
 * device process of ours does: another run's), and TAPs.
 */
interface Before {
  processes: number[];
  taps: string[];
}

async function leftovers(sockets: string, ns: string, before: Before): Promise<Leftovers> {
  const below = descendantPids(Deno.pid).map((pid) => `${pid} (a descendant)`);
  const named = processesMentioning(MAIN).filter((p) => !before.processes.includes(p.pid))
    .map((p) => `${p.pid}: ${p.cmdline.slice(0, 120)}`);
  const nowOnHost = await taps();
  return {
    processes: [...below, ...named],
    sockets: [...Deno.readDirSync(sockets)].map((e) => e.name),
    taps: [...await taps(ns), ...nowOnHost.filter((t) => !before.taps.includes(t))],
  };
}

const hex = (byte: number) => byte.toString(16).padStart(2, "0");

/** What a VMM's stream has said so far, read on until it says `marker` or ends. */
class StreamText {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  text = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Reads until the text holds `marker` (true) or the stream ends (false). */
  async until(marker: string): Promise<boolean> {
    while (!this.text.includes(marker)) {
      const { value, done } = await this.#reader.read();
      if (done) return false;
      this.text += this.#decoder.decode(value, { stream: true });
    }
    return true;
  }

  /** Reads to the end; returns all the text. */
  async rest(): Promise<string> {
    for (let r = await this.#reader.read(); !r.done; r = await this.#reader.read()) {
      this.text += this.#decoder.decode(r.value, { stream: true });
    }
    return this.text;
  }
}

/** A VM of the spin guest, started through the CLI, with what it printed so far. */
interface StartedVm {
  child: Deno.ChildProcess;
  stdout: StreamText;
  stderr: StreamText;
  /** Its devices are ready, its vCPUs in KVM_RUN and its guest said it runs. */
  running: boolean;
}

/**
 * Starts a VM of the spin guest and waits until it runs: its devices ready and its vCPUs in
 * KVM_RUN (the VMM's debug line) and the guest's word on COM1; or until the VM has ended.
 */
async function startVm(
  guest: string,
  index: number,
  sockets: string,
  ns: string,
  args: string[],
): Promise<StartedVm> {
  const child = spawnCrosvm(
    [
      "run",
      "-m",
      String(GUEST_MIB),
      "-s",
      sockets,
      "--log-level",
      "debug",
      "--net",
      `host-ip=10.78.${index}.1,netmask=255.255.255.0,mac=52:54:00:78:00:${hex(index)}`,
      ...args,
      guest,
    ],
    "null",
    { via: ["ip", "netns", "exec", ns] },
  );
  const stdout = new StreamText(child.stdout);
  const stderr = new StreamText(child.stderr);
  const [ran, ready] = await Promise.all([stdout.until(SPIN_RUNNING), stderr.until(VCPUS_RUN)]);
  return { child, stdout, stderr, running: ran && ready };
}

/**
 * Stops a started VM through its control socket (`crosvm stop`), whether or not it got as far as
 * running (one that has ended already has no socket left); how it ended.
 */
async function stopVm(vm: StartedVm, sockets: string) {
  try {
    using client = connect(`${sockets}/crosvm-${vm.child.pid}.sock`);
    await client.stop();
  } catch (e) {
    if (vm.running) throw e;
  }
  const [stdout, stderr] = await Promise.all([vm.stdout.rest(), vm.stderr.rest()]);
  return { running: vm.running, code: (await vm.child.status).code, stdout, stderr };
}

/** Even VMs run their devices jailed (the default), odd ones with `--disable-sandbox`. */
const jailed = (index: number) => index % 2 === 0;

const NAME = `${VMS} VMs at once through the CLI (half jailed, half --disable-sandbox), ` +
  `${ROUNDS} rounds, stopped through their sockets: all exit 0, no process, socket, TAP, ` +
  "descriptor or mapping left";

Deno.test({
  name: PROBLEM === undefined ? NAME : `${NAME} [ignored: ${PROBLEM}]`,
  ignore: PROBLEM !== undefined,
  fn: async () => {
    assert.ok(VMS >= 1 && VMS <= MAX_VMS && ROUNDS >= 1, `RELIABILITY_VMS 1..${MAX_VMS}`);
    const guest = await buildGuest("spin");
    const sockets = await Deno.makeTempDir({ prefix: "crosvm-many-" });
    const ns = `crosvm-many-${crypto.randomUUID().slice(0, 8)}`;
    await ip("netns", "add", ns);
    try {
      const before = { processes: processesMentioning(MAIN).map((p) => p.pid), taps: await taps() };
      const fds = await settledFdCount();
      const maps = namedMappings();
      let held = 0;
      for (let round = 1; round <= ROUNDS; round++) {
        const since = performance.now();
        const started = await Promise.all(
          Array.from(
            { length: VMS },
            (_, i) => startVm(guest, i, sockets, ns, jailed(i) ? [] : ["--disable-sandbox"]),
          ),
        );
        // Every guest runs now: the round holds all its VMs at once.
        held = Math.max(held, started.filter((vm) => vm.running).length);
        const runs = await Promise.all(started.map((vm) => stopVm(vm, sockets)));
        for (const run of runs) {
          assert.ok(run.running, `a VM that never ran:\n${run.stderr}`);
          assert.equal(run.code, 0, run.stderr);
          assert.equal(run.stdout, SPIN_RUNNING, run.stderr);
        }
        const left = await leftovers(sockets, ns, before);
        const fdGrowth = await settledFdCount() - fds;
        const mapGrowth = namedMappings().length - maps.length;
        const seconds = ((performance.now() - since) / 1000).toFixed(1);
        console.log(
          `  round ${round}: ${VMS} VMs ran at once, stopped, exited 0 in ${seconds} s; left: ` +
            `${left.processes.length} processes, ${left.sockets.length} sockets, ` +
            `${left.taps.length} TAPs, ${fdGrowth} descriptors, ${mapGrowth} mappings`,
        );
        assert.deepEqual(left, { processes: [], sockets: [], taps: [] });
        assert.equal(fdGrowth, 0, "descriptors of the test process");
        assert.deepEqual(namedMappings(), maps, "the test process's mappings");
      }
      const jailedVms = Array.from({ length: VMS }, (_, i) => i).filter(jailed).length;
      console.log(
        `  ${held} VMs held at once; ${VMS * ROUNDS} VMs in ${ROUNDS} rounds ` +
          `(${jailedVms * ROUNDS} jailed, ${(VMS - jailedVms) * ROUNDS} unjailed), ` +
          "0 leaked resources",
      );
    } finally {
      await ip("netns", "del", ns);
      await Deno.remove(sockets, { recursive: true });
    }
  },
});

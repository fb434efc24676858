/**
 * Boots the nested Linux test bed (shared/design.md, section 3) and runs scenarios in it.
 *
 * L1 is `qemu-system-x86_64 -accel tcg -cpu max` running Debian's generic kernel, with
 * kvm_amd giving a `/dev/kvm` on emulated SVM. The host shares in, over virtfs: its `/usr`
 * (QEMU, libraries), the project source, the Deno binary's directory, the built assets (L2
 * kernels and initramfs), all read-only, and a per-run `work` directory, read-write, holding
 * the scenarios. L1's /init ({@link ./l1_init.sh}) runs each scenario's shell command with a
 * timeout, framing its output on the serial console; this side timestamps every serial line.
 *
 * @example
 * ```ts
 * const bed = new Testbed();
 * const results = await bed.boot([{ name: "uname", command: "uname -r", timeoutSeconds: 10 }]);
 * console.log(results.get("uname")?.output);
 * ```
 *
 * @module
 */

import { type Assets, CACHE_DIR, ensureAssets, PROJECT_ROOT } from "./assets.ts";

/** Where things are inside L1; scenario commands see them as environment variables too. */
export const L1_PATHS = {
  /** `$PROJECT`: the project root, read-only, at the same path as on the host. */
  project: PROJECT_ROOT,
  /** `$DENO`: the host's Deno binary. */
  deno: "/mnt/deno/deno",
  /** `$WORK`: this run's directory, read-write, shared with the host (uncached). */
  work: "/mnt/work",
  /**
   * `$ASSETS`: the built assets; `$L2_KERNEL`, `$L2_VMLINUX`, `$L2_INITRD`, `$L2_TOOLS_INITRD`
   * point in here.
   */
  assets: "/mnt/assets",
} as const;

/**
 * A shell command run in L1 by busybox `sh`, in /tmp (a tmpfs), with stdin /dev/null and
 * stdout/stderr on the serial console. Environment: `$DENO`, `$PROJECT`, `$WORK`,
 * `$ASSETS`, `$L2_KERNEL` (bzImage), `$L2_VMLINUX`, `$L2_INITRD`, `$L2_TOOLS_INITRD` (the
 * agent's initramfs with iperf3 and its libraries), `$DENO_DIR` (a tmpfs
 * directory), `PATH=/bin:/usr/bin:/usr/sbin` (busybox first, then the host's /usr).
 */
export interface Scenario {
  /** Unique name; letters, digits and `._:-` (it goes into the console markers). */
  readonly name: string;
  /** The shell command (a script; may span lines). */
  readonly command: string;
  /** Killed (its whole process group) after this long. */
  readonly timeoutSeconds: number;
  /**
   * Scenarios whose effects in L1 this one relies on (files they left in L1's /tmp): on a fresh
   * L1 they run again before it.
   */
  readonly needs?: readonly string[];
  /**
   * Runs with no other scenario beside it, after those that may run side by side
   * ({@link TestbedOptions.lanes}): it looks at state all of L1 shares (every process, the
   * kernel log). A scenario that needs one runs alone too.
   */
  readonly alone?: boolean;
  /**
   * Reads and writes L1's console (no timeout): with {@link Testbed.attach}, that console is
   * the user's terminal.
   */
  readonly interactive?: boolean;
}

/** One serial line with the host time it arrived, in ms since L1's QEMU was started. */
export interface TimedLine {
  readonly ms: number;
  /** The host's wall-clock time when the line arrived (ms since the Unix epoch). */
  readonly epochMs: number;
  readonly text: string;
}

/** What one scenario did. */
export interface ScenarioResult {
  readonly name: string;
  /** Exit status of the command (137 when killed by the timeout); undefined if it never ended. */
  readonly status: number | undefined;
  /** True when the timeout killed it. */
  readonly timedOut: boolean;
  /** Its console output, lines joined with "\n" (carriage returns removed). */
  readonly output: string;
  /** Its console output, line by line, timestamped. */
  readonly lines: readonly TimedLine[];
  /** When its BEGIN marker arrived (ms since QEMU started). */
  readonly startMs: number;
  /** From its BEGIN marker to its END marker (or to the end of the output). */
  readonly durationMs: number;
}

/** The whole of one L1 boot. */
export interface BootRecord {
  /** Every serial line. */
  readonly lines: readonly TimedLine[];
  /** When L1's /init started (ms since QEMU started). */
  readonly initMs: number | undefined;
  /** When the scenario runner was ready: modules loaded, shares mounted. */
  readonly readyMs: number | undefined;
  /** When the last scenario had ended. */
  readonly doneMs: number | undefined;
  /** When QEMU exited. */
  readonly totalMs: number;
  /** Whether L1 had /dev/kvm. */
  readonly kvm: boolean;
  /** QEMU's exit status (killed when the overall time limit ran out). */
  readonly qemuStatus: number;
  /**
   * The scenario L1 stopped answering in (with several running, the one past its time, else the
   * one running longest): L1's heartbeat went silent for {@link HEARTBEAT_SILENCE_SECONDS}, or
   * L1's kernel reported a stuck CPU or a bug of its own ({@link L1_LOCKUP_RE},
   * {@link L1_KERNEL_FAULT_RE}), or the scenario had not ended {@link WEDGED_GRACE_SECONDS} after
   * its own timeout (so L1's timeout could not fire: its kernel or a share was stuck), and QEMU was
   * killed. Undefined when L1 ran to its end.
   */
  readonly wedgedIn: string | undefined;
  /** QEMU's stderr. */
  readonly stderr: string;
}

/**
 * A scenario script that runs `command` (a VMM booting the L2 agent) in the background with its
 * console on FIFOs, prints every console line, and runs the shell commands `action` once, when
 * the first line containing `marker` arrives. `action` finds the command's pid in `$vmm` and
 * its console input on descriptor 3. The script's status is then the command's.
 */
export function onConsoleLine(command: string, marker: string, action: string): string {
  return onConsoleLines(command, [[marker, action]]);
}

/**
 * {@link onConsoleLine} with several markers: each `[marker, action]` runs its action once, at
 * the first line containing its marker (a guest and its host taking turns). `perLine` is what
 * the script does with every line (`$line`) first: by default it prints it.
 */
export function onConsoleLines(
  command: string,
  steps: readonly (readonly [marker: string, action: string])[],
  perLine = 'echo "$line"',
): string {
  const cases = steps.map(([marker, action], i) =>
    `  case "$seen_${i}:$line" in :*"${marker}"*)
    seen_${i}=1
    ${action}
    ;;
  esac`
  );
  return `dir=$(mktemp -d)
mkfifo "$dir/in" "$dir/out"
${command} <"$dir/in" >"$dir/out" 2>&1 &
vmm=$!
exec 3>"$dir/in"
${steps.map((_, i) => `seen_${i}=`).join(" ")}
while read -r line; do
  ${perLine}
${cases.join("\n")}
done <"$dir/out"
wait $vmm`;
}

/**
 * A scenario script that runs `command` (a VMM booting the L2 agent) with its console on FIFOs,
 * prints every console line, and types `input` (one line each) into the console once the
 * agent's report has ended.
 */
export function typeAfterAgentReport(command: string, input: readonly string[]): string {
  return onConsoleLine(command, "@@AGENT END", typeLines(input));
}

/** Shell commands that type `input` (one line each) into the console of {@link onConsoleLine}. */
export function typeLines(input: readonly string[]): string {
  const quoted = input.map((line) => `'${line.replaceAll("'", `'\\''`)}'`).join(" ");
  return `printf '%s\\n' ${quoted} >&3`;
}

/** Options for {@link Testbed}. */
export interface TestbedOptions {
  /** Prebuilt assets (default: {@link ensureAssets}). */
  assets?: Assets;
  /** L1 memory in MiB (default 2048). */
  memMiB?: number;
  /** L1 vCPUs (default 2). */
  cpus?: number;
  /**
   * How many scenarios L1 runs at once (default 1): each lane takes the next scenario no lane
   * has taken, in order (l1_runner.sh); {@link Scenario.alone} ones run afterwards, one by one.
   */
  lanes?: number;
  /** Extra L1 kernel parameters. */
  kernelParams?: string[];
  /** Time L1 gets to reach the scenario runner, in seconds (default 120). */
  bootTimeoutSeconds?: number;
  /** Deno binary to share into L1 (default: this one, {@link Deno.execPath}). */
  denoBinary?: string;
  /** Project root to share into L1 (default: this checkout). */
  projectRoot?: string;
  /** Called with every serial line as it arrives (default: printed to stderr if the
   * environment has TESTBED_VERBOSE=1). */
  onLine?: (line: TimedLine) => void;
  /**
   * How many times a fresh L1 reruns what is left when L1 stops answering (default 2: a wedge
   * is L1's fault under TCG, not the scenario's, and a retry rescues the run).
   */
  rebootsAfterWedge?: number;
  /**
   * How many times a fresh L1 reruns a scenario that ran out of time while a vCPU of its guest
   * was running ({@link GUEST_RUNNING_RE}; default 1). Seen under nested SVM in TCG: an L2
   * Linux that never reaches its init in four minutes, its vCPU thread busy in L1's KVM, where it
   * boots in ten seconds every other time. The first attempt's report is printed.
   */
  rerunsOfRunningGuests?: number;
  /** Seconds past a scenario's timeout before L1 counts as stuck (default
   * {@link WEDGED_GRACE_SECONDS}). */
  wedgedGraceSeconds?: number;
  /** Seconds without L1's heartbeat before it counts as stuck (default
   * {@link HEARTBEAT_SILENCE_SECONDS}; only once a first heartbeat came). */
  heartbeatSilenceSeconds?: number;
  /** Keep the per-run directory under `.cache/testbed/runs/` (default false). */
  keepWorkDir?: boolean;
}

const NAME_RE = /^[\w.:-]+$/;
/** L1's heartbeat: the work directory's file that l1_init.sh touches every 10 s. */
const HEARTBEAT_FILE = "heartbeat";
/**
 * How long L1 may go without a heartbeat while a scenario runs before it counts as stuck (its
 * timers stopped: the heartbeat's `sleep` never ends).
 */
export const HEARTBEAT_SILENCE_SECONDS = 60;
const BEGIN_RE = /^@@SCENARIO (\S+) BEGIN$/;
const END_RE = /@@SCENARIO (\S+) END status=(\d+) timeout=([01])$/;
/** A line a scenario printed, tagged by l1_runner.sh with the scenario's name. */
const OUT_RE = /^@@OUT (\S+) (.*)$/;
/** l1_init.sh's word that L1's own kernel logged a soft lockup or an RCU stall. */
const L1_LOCKUP_RE = /^@@L1 LOCKUP /;
/**
 * L1's own kernel on the console (its lines are the untagged ones with a printk time; L1's
 * `loglevel=5` shows warnings and worse) saying it hit a bug of its own or panicked. Seen under
 * TCG: "scheduling while atomic" in L1's KVM swapping a vCPU's FPU state, a stack-guard fault, a
 * NULL dereference in L1's idle task and "Kernel panic - not syncing".
 */
const L1_KERNEL_FAULT_RE =
  /^\[\s*\d+\.\d+\] (BUG: |WARNING: |Oops|general protection fault|Kernel panic - not syncing)/;
/** timeout_report.sh's word that a scenario out of time had a vCPU thread running. */
const GUEST_RUNNING_RE = /^@@L1 VCPU RUNNING /;
/** timeout_report.sh's lines: where the scenario's threads were, and L1's KVM trace. */
const TIMEOUT_REPORT_RE = /^@@L1 (TIMEOUT|VCPU|KVM) /;

/** The nested test bed: each {@link boot} starts a fresh L1 and runs scenarios in it. */
export class Testbed {
  /** The record of the last L1 boot, for timings and the full console log. */
  lastBoot: BootRecord | undefined;
  /** Every L1 boot of the last {@link boot}: one, or more when L1 stopped answering. */
  boots: BootRecord[] = [];
  /**
   * The scenarios of the last {@link boot} that a fresh L1 ran again because they ran out of
   * time with a vCPU of their guest running ({@link TestbedOptions.rerunsOfRunningGuests}).
   */
  rerun: string[] = [];
  readonly #options: TestbedOptions;

  constructor(options: TestbedOptions = {}) {
    this.#options = options;
  }

  /**
   * Boots L1, runs `scenarios` in order, powers off, and returns each scenario's result by
   * name. When L1 stops answering ({@link BootRecord.wedgedIn}), a fresh L1 runs the scenarios
   * that had not ended, the stuck one last (if it is what sticks, the others still run), up to
   * {@link TestbedOptions.rebootsAfterWedge} times; a scenario that ran out of time with its
   * guest's vCPU running is run again on a fresh L1
   * ({@link TestbedOptions.rerunsOfRunningGuests}). A scenario missing from the map never
   * started (L1 failed or the time ran out: see {@link boots}).
   */
  async boot(scenarios: readonly Scenario[]): Promise<Map<string, ScenarioResult>> {
    const names = new Set<string>();
    for (const s of scenarios) {
      if (!NAME_RE.test(s.name) || names.has(s.name)) {
        throw new Error(`bad or repeated scenario name ${JSON.stringify(s.name)}`);
      }
      names.add(s.name);
    }
    this.boots = [];
    this.rerun = [];
    const results = new Map<string, ScenarioResult>();
    let remaining = scenarios;
    let reboots = 0;
    for (;;) {
      const record = await this.#bootOnce(remaining);
      this.boots.push(record);
      this.lastBoot = record;
      const ran = parseScenarios(record.lines, record.totalMs);
      for (const [name, result] of ran) results.set(name, result);
      if (record.wedgedIn !== undefined) {
        const left = remaining.filter((s) => results.get(s.name)?.status === undefined);
        remaining = withNeeds(scenarios, [
          ...left.filter((s) => s.name !== record.wedgedIn),
          ...left.filter((s) => s.name === record.wedgedIn),
        ]);
        const retry = reboots++ < (this.#options.rebootsAfterWedge ?? 2) && remaining.length > 0;
        const graceSeconds = grace(this.#options);
        const why =
          `a stuck CPU or a bug in its kernel, no heartbeat, or no end ${graceSeconds} s ` +
          "after its timeout";
        console.error(
          `testbed: L1 stopped answering in scenario ${record.wedgedIn} (${why}); QEMU was killed` +
            (retry
              ? `; a fresh L1 runs what is left (${remaining.length} of ${scenarios.length})`
              : ""),
        );
        if (!retry) return results;
        continue;
      }
      const reruns = this.#options.rerunsOfRunningGuests ?? 1;
      const running = remaining.filter((s) => {
        const r = ran.get(s.name);
        return r?.timedOut && r.lines.some((l) => GUEST_RUNNING_RE.test(l.text)) &&
          this.rerun.filter((name) => name === s.name).length < reruns;
      });
      if (running.length === 0) return results;
      for (const s of running) {
        const report = ran.get(s.name)!.lines.filter((l) => TIMEOUT_REPORT_RE.test(l.text));
        console.error(
          `testbed: scenario ${s.name} ran out of time with a vCPU of its guest running; a ` +
            `fresh L1 runs it again. L1's report:\n${report.map((l) => l.text).join("\n")}`,
        );
        this.rerun.push(s.name);
      }
      remaining = withNeeds(scenarios, running);
    }
  }

  /** One L1 boot that runs `scenarios`. */
  async #bootOnce(scenarios: readonly Scenario[]): Promise<BootRecord> {
    return await this.#inWorkDir(scenarios, async (assets, workDir) => {
      const bootTimeout = this.#options.bootTimeoutSeconds ?? 120;
      const limitMs = 1000 * scenarios.reduce((t, s) => t + s.timeoutSeconds + 5, bootTimeout);
      const timeouts = new Map(scenarios.map((s) => [s.name, s.timeoutSeconds]));
      return await runL1(this.#options, assets, workDir, limitMs, timeouts);
    });
  }

  /**
   * Boots L1 with its console on this process's stdin/stdout (a terminal, typically) and
   * runs one interactive scenario there; returns the scenario's exit status.
   */
  async attach(scenario: Scenario): Promise<number> {
    const scenarios = [{ ...scenario, interactive: true }];
    return await this.#inWorkDir(scenarios, async (assets, workDir) => {
      const qemu = new Deno.Command(assets.qemu, {
        args: l1Args(this.#options, assets, workDir),
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
      });
      await qemu.output();
      const result = await Deno.readTextFile(`${workDir}/results/000`).catch(() => "1");
      return Number(result.split(" ")[0]);
    });
  }

  /** Runs `fn` with the assets and a fresh work directory holding `scenarios`. */
  async #inWorkDir<T>(
    scenarios: readonly Scenario[],
    fn: (assets: Assets, workDir: string) => Promise<T>,
  ): Promise<T> {
    const opts = this.#options;
    const assets = opts.assets ?? await ensureAssets();
    const runsDir = `${CACHE_DIR}/runs`;
    await Deno.mkdir(runsDir, { recursive: true });
    const workDir = await Deno.makeTempDir({ dir: runsDir });
    try {
      await writeWorkDir(workDir, assets, scenarios, opts);
      return await fn(assets, workDir);
    } finally {
      if (!opts.keepWorkDir) await Deno.remove(workDir, { recursive: true });
    }
  }
}

/**
 * `order` with, in front, every scenario of `all` that one of them needs (transitively) and
 * that `order` lacks: a fresh L1 has none of their effects.
 */
function withNeeds(all: readonly Scenario[], order: readonly Scenario[]): Scenario[] {
  const byName = new Map(all.map((s) => [s.name, s]));
  const names = new Set(order.map((s) => s.name));
  const needed: Scenario[] = [];
  const add = (s: Scenario) => {
    for (const name of s.needs ?? []) {
      const need = byName.get(name);
      if (need === undefined || names.has(name)) continue;
      names.add(name);
      add(need);
      needed.push(need);
    }
  };
  order.forEach(add);
  return [...needed, ...order];
}

/**
 * Writes `scenarios/NNN/{name,timeout,command[,needs,alone,interactive]}`, `lanes` and `env.sh`
 * for L1's runner (l1_runner.sh).
 */
async function writeWorkDir(
  dir: string,
  assets: Assets,
  scenarios: readonly Scenario[],
  opts: TestbedOptions,
) {
  const projectRoot = opts.projectRoot ?? PROJECT_ROOT;
  await cacheModules(opts.denoBinary ?? Deno.execPath(), projectRoot, `${dir}/deno_dir`);
  const inAssets = (path: string) => `${L1_PATHS.assets}/${path.slice(assets.dir.length + 1)}`;
  const env = {
    PROJECT: projectRoot,
    ASSETS: L1_PATHS.assets,
    L2_KERNEL: inAssets(assets.l2Kernel),
    L2_VMLINUX: inAssets(assets.l2Vmlinux),
    L2_INITRD: inAssets(assets.l2Initrd),
    L2_TOOLS_INITRD: inAssets(assets.l2ToolsInitrd),
  };
  await Deno.writeTextFile(
    `${dir}/env.sh`,
    Object.entries(env).map(([k, v]) => `export ${k}=${v}\n`).join(""),
  );
  await Deno.writeTextFile(`${dir}/scenarios.json`, JSON.stringify(scenarios, null, 2));
  await Deno.writeTextFile(`${dir}/lanes`, String(opts.lanes ?? 1));
  const ids = new Map(scenarios.map((s, i) => [s.name, String(i).padStart(3, "0")]));
  const alone = new Set<string>();
  for (const s of scenarios) {
    if (s.alone || s.needs?.some((name) => alone.has(name))) alone.add(s.name);
  }
  for (const s of scenarios) {
    const sdir = `${dir}/scenarios/${ids.get(s.name)}`;
    await Deno.mkdir(sdir, { recursive: true });
    await Deno.writeTextFile(`${sdir}/name`, s.name);
    await Deno.writeTextFile(`${sdir}/timeout`, String(Math.max(1, Math.ceil(s.timeoutSeconds))));
    await Deno.writeTextFile(`${sdir}/command`, s.command + "\n");
    const needs = (s.needs ?? []).flatMap((name) => ids.get(name) ?? []);
    if (needs.length > 0) await Deno.writeTextFile(`${sdir}/needs`, needs.join("\n") + "\n");
    if (alone.has(s.name)) await Deno.writeTextFile(`${sdir}/alone`, "");
    if (s.interactive) await Deno.writeTextFile(`${sdir}/interactive`, "");
  }
}

/**
 * Compiles the project's modules (the CLI and every Worker entry point under src/) into a
 * fresh DENO_DIR that L1 copies: Deno in L1 then starts without transpiling over 9p.
 */
async function cacheModules(deno: string, projectRoot: string, denoDir: string): Promise<void> {
  const modules = [`${projectRoot}/main.ts`];
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) modules.push(path);
    }
  };
  await walk(`${projectRoot}/src`);
  const { success, stderr } = await new Deno.Command(deno, {
    args: ["cache", "--quiet", ...modules],
    env: { DENO_DIR: denoDir },
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`deno cache failed: ${new TextDecoder().decode(stderr)}`);
}

/** The QEMU arguments for L1. */
function l1Args(opts: TestbedOptions, assets: Assets, workDir: string): string[] {
  const deno = opts.denoBinary ?? Deno.execPath();
  const shares: [string, string, boolean][] = [
    ["usr", "/usr", true],
    ["project", opts.projectRoot ?? PROJECT_ROOT, true],
    ["deno", deno.slice(0, deno.lastIndexOf("/")), true],
    ["assets", assets.dir, true],
    ["work", workDir, false],
  ];
  // loglevel=5: quiet, but warnings still reach the console, so an L1 soft lockup or RCU stall
  // comes with its backtrace.
  const append = [
    ...["console=ttyS0", "quiet", "loglevel=5", "panic=-1"],
    ...(opts.kernelParams ?? []),
  ];
  return [
    ...["-accel", "tcg", "-cpu", "max", "-M", "q35"],
    ...["-m", String(opts.memMiB ?? 2048), "-smp", String(opts.cpus ?? 2)],
    ...["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"],
    ...["-kernel", assets.l1Kernel, "-initrd", assets.l1Initrd, "-append", append.join(" ")],
    ...shares.flatMap(([tag, path, ro]) => [
      "-virtfs",
      `local,path=${path},mount_tag=${tag},security_model=none${ro ? ",readonly=on" : ""}`,
    ]),
  ];
}

/**
 * How long after a scenario's timeout L1 still has to report its end: L1 kills a scenario at
 * its timeout, so one that has not ended by then means L1 itself is stuck (an L1 kernel that
 * stopped firing timers, seen under TCG with nested SVM, or a share that stopped answering).
 */
export const WEDGED_GRACE_SECONDS = 75;

/** The grace after a scenario's timeout in `opts`. */
const grace = (opts: TestbedOptions) => opts.wedgedGraceSeconds ?? WEDGED_GRACE_SECONDS;

/**
 * Runs L1 to completion (or until `limitMs`, or until a scenario outlives its entry in
 * `timeouts` by the grace, {@link WEDGED_GRACE_SECONDS} by default), timestamping its serial lines.
 */
async function runL1(
  opts: TestbedOptions,
  assets: Assets,
  workDir: string,
  limitMs: number,
  timeouts: ReadonlyMap<string, number>,
): Promise<BootRecord> {
  const verbose = Deno.env.get("TESTBED_VERBOSE") === "1";
  const onLine = opts.onLine ??
    (verbose ? (l: TimedLine) => console.error(`[${(l.ms / 1000).toFixed(2)}] ${l.text}`) : null);
  const t0 = performance.now();
  const child = new Deno.Command(assets.qemu, {
    args: l1Args(opts, assets, workDir),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  /** The scenarios running now, in the order they began, and when L1 must have ended each. */
  const running = new Map<string, number>();
  let wedgedIn: string | undefined;
  /** L1 is stuck in `name` (or, with none, in the scenario running longest): QEMU goes. */
  const wedged = (name?: string) => {
    if (running.size === 0 || wedgedIn !== undefined) return;
    wedgedIn = name ?? running.keys().next().value;
    running.clear();
    child.kill("SIGKILL");
  };
  const wedgeCheck = setInterval(() => {
    if (running.size === 0) return;
    const now = performance.now() - t0;
    const late = [...running].find(([, deadlineMs]) => now >= deadlineMs);
    if (late) return wedged(late[0]);
    const silence = 1000 * (opts.heartbeatSilenceSeconds ?? HEARTBEAT_SILENCE_SECONDS);
    const beat = lastHeartbeat(workDir);
    if (beat !== undefined && Date.now() - beat > silence) wedged();
  }, 1000);
  const stderr = new Response(child.stderr).text();
  const lines: TimedLine[] = [];
  let initMs, readyMs, doneMs: number | undefined;
  let kvm = false;
  let pending = "";
  const decoder = new TextDecoder();
  const take = (text: string, ms: number) => {
    const line = { ms, epochMs: Date.now(), text: text.replace(/\r/g, "") };
    lines.push(line);
    onLine?.(line);
    if (line.text === "@@L1 INIT") initMs = ms;
    if (line.text.startsWith("@@RUNNER READY")) {
      readyMs = ms;
      kvm = line.text.includes("kvm=yes");
    }
    if (line.text === "@@RUNNER DONE") doneMs = ms;
    const begin = BEGIN_RE.exec(line.text);
    if (begin) {
      const seconds = (timeouts.get(begin[1]) ?? 0) + grace(opts);
      running.set(begin[1], ms + 1000 * seconds);
    }
    const end = END_RE.exec(line.text);
    if (end) running.delete(end[1]);
    if (L1_LOCKUP_RE.test(line.text) || L1_KERNEL_FAULT_RE.test(line.text)) wedged();
  };
  try {
    for await (const chunk of child.stdout) {
      const ms = performance.now() - t0;
      const parts = (pending + decoder.decode(chunk, { stream: true })).split("\n");
      pending = parts.pop()!;
      for (const p of parts) take(p, ms);
    }
    if (pending) take(pending, performance.now() - t0);
  } finally {
    clearTimeout(killer);
    clearInterval(wedgeCheck);
  }
  const status = await child.status;
  return {
    lines,
    initMs,
    readyMs,
    doneMs,
    totalMs: performance.now() - t0,
    kvm,
    qemuStatus: status.code,
    wedgedIn,
    stderr: await stderr,
  };
}

/** When L1 last touched its heartbeat (ms since the epoch, the host's clock), if it has. */
function lastHeartbeat(workDir: string): number | undefined {
  try {
    return Deno.statSync(`${workDir}/${HEARTBEAT_FILE}`).mtime?.getTime();
  } catch {
    return undefined;
  }
}

/**
 * Cuts the console log into per-scenario results: a scenario's lines are those l1_runner.sh
 * tagged with its name (`@@OUT NAME TEXT`) between its BEGIN and END markers, and the console's
 * untagged lines (L1's kernel, its reports) while it ran.
 */
function parseScenarios(lines: readonly TimedLine[], endMs: number): Map<string, ScenarioResult> {
  const results = new Map<string, ScenarioResult>();
  const open = new Map<string, { startMs: number; lines: TimedLine[] }>();
  const finish = (name: string, status: number | undefined, timedOut: boolean, ms: number) => {
    const current = open.get(name);
    if (!current) return;
    open.delete(name);
    results.set(name, {
      name,
      status,
      timedOut,
      output: current.lines.map((l) => l.text).join("\n"),
      lines: current.lines,
      startMs: current.startMs,
      durationMs: ms - current.startMs,
    });
  };
  for (const line of lines) {
    const begin = BEGIN_RE.exec(line.text);
    if (begin) {
      finish(begin[1], undefined, false, line.ms);
      open.set(begin[1], { startMs: line.ms, lines: [] });
      continue;
    }
    const tagged = OUT_RE.exec(line.text);
    if (tagged) {
      open.get(tagged[1])?.lines.push({ ...line, text: tagged[2] });
      continue;
    }
    const end = END_RE.exec(line.text);
    if (end && open.has(end[1])) {
      const before = line.text.slice(0, end.index);
      if (before) open.get(end[1])!.lines.push({ ...line, text: before });
      finish(end[1], Number(end[2]), end[3] === "1", line.ms);
      continue;
    }
    if (line.text === "@@RUNNER DONE") break;
    for (const current of open.values()) current.lines.push(line);
  }
  for (const name of [...open.keys()]) finish(name, undefined, false, endMs);
  return results;
}

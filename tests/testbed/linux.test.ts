/**
 * Linux end-to-end tests: Debian's cloud kernel booted by our VMM inside the nested test
 * bed (one L1 boot shared by every scenario), checked from inside the guest by the agent.
 */
import assert from "node:assert/strict";
import { crashRoundResults, crashRoundsScript, crashRoundsSummary } from "./crash_rounds.ts";
import { soakDrift, soakSamples, soakScript, soakSummary } from "./soak.ts";
import { DEVICE_PROCESS_COMMAND } from "../../src/devices/virtio/process/command.ts";
import { resolveSyscallNumber } from "../../src/ffi/seccomp.ts";
import { buildBundle } from "../../scripts/bundle.ts";
import { PROJECT_ROOT } from "./assets.ts";
import {
  onConsoleLine,
  onConsoleLines,
  type Scenario,
  type ScenarioResult,
  Testbed,
  typeAfterAgentReport,
  typeLines,
} from "./harness.ts";

/** The bed needs root (apt-get, QEMU) and Debian's package mirrors. */
const CAN_RUN = Deno.uid() === 0;
const SKIP = "needs root to install QEMU and Debian's kernels for the nested test bed";

/** Quiet guests: every console byte is a VM exit. reboot=t/panic=-1: reboot and panic triple-fault. */
const BASE_PARAMS = "quiet reboot=t panic=-1";
/**
 * `TESTBED_SECCOMP_AUDIT=1`: the policy audit. Every VMM logs seccomp violations instead of
 * dying of them (`--seccomp-log-failures`), and each scenario must leave no seccomp record in
 * L1's kernel log: every syscall its devices made, start-up to exit, is in the shipped policies.
 * Scenarios with policies of their own are left out.
 */
const AUDIT = Deno.env.get("TESTBED_SECCOMP_AUDIT") === "1";
/** The VMM's main module in L1: the source tree's. */
const SOURCE_MAIN = "$PROJECT/main.ts";
/** The single-file VMM (scripts/bundle.ts), built on the host into the project L1 shares. */
const BUNDLE = ".cache/bundle/crosvm.js";
/** `crosvm run ARGS` from `program` (a main module in L1). */
const crosvm = (args: string, program = SOURCE_MAIN) =>
  `"$DENO" run --allow-all "${program}" run ${AUDIT ? "--seccomp-log-failures " : ""}${args}`;
/** Boots the agent with `args` and the agent parameters `params` (agent.run=, agent.token=…). */
const agentBoot = (args: string, params: string, kernel = "$L2_VMLINUX", program?: string) =>
  crosvm(`${args} -p "${BASE_PARAMS} ${params}" -i "$L2_INITRD" "${kernel}"`, program);
/** Boots the agent to do `action` when it has reported. */
const boot = (action: string, args = "", kernel = "$L2_VMLINUX", program?: string) =>
  agentBoot(args, `agent.action=${action}`, kernel, program);

/**
 * `command` in the background of L1, detached from the scenario's shell (started by a subshell
 * that exits at once, so init is its parent). A scenario that reads the VMM's console line by line
 * ({@link onConsoleLine}) must start its helpers so: a child of the reading shell that ends
 * interrupts busybox's `read` with SIGCHLD, and the part of the line read so far is lost.
 */
const detached = (command: string) => `(${command} &)`;

/** A scenario with the checks to make on what it printed. */
interface LinuxTest {
  name: string;
  /** Runs its devices under policies of its own (left out of the policy audit). */
  ownPolicies?: boolean;
  title: string;
  /** The scenario's command; without it the test checks the scenario `name` some other test runs. */
  command?: string;
  /** Runs the single-file bundle, built before the bed boots. */
  needsBundle?: boolean;
  /** The VM ends inside the agent's report (the check gets the lines it printed). */
  cutShort?: boolean;
  /** Boots no guest (runs a host test in L1): the check gets no agent report. */
  withoutAgent?: boolean;
  /** L1 kills the scenario after this long (default {@link SCENARIO_TIMEOUT_SECONDS}). */
  timeoutSeconds?: number;
  /** Scenarios that leave in L1 what this one uses (see `Scenario.needs`). */
  needs?: readonly string[];
  /** Runs with no scenario beside it (see `Scenario.alone`): it counts L1's jails, say. */
  alone?: boolean;
  check: (result: ScenarioResult, agent: Map<string, string>) => void;
}

/**
 * How long a scenario may take in L1: the slowest pass in about 60 s on a quiet host (the
 * balloon's asks for more) when it runs alone, in up to 1.6 times that beside another (lanes),
 * and CI's hosts have been twice as slow; a stuck one costs this plus the harness's grace before
 * a fresh L1.
 */
const SCENARIO_TIMEOUT_SECONDS = 200;

/** Distinct per run, so no report can come from an image an earlier run left behind. */
const TOKEN = crypto.randomUUID().slice(0, 8);
const MKROOTFS = `sh "$PROJECT/tests/testbed/mkrootfs.sh"`;
/** `IMAGE SIZE PROGRAM...`: a disk of host programs for L2, with their libraries and loader. */
const MKTOOLSDISK = `sh "$PROJECT/tests/testbed/mktoolsdisk.sh"`;
/** Prints `NAME=unchanged` or `NAME=changed`: the image against its checksum in the file SUMS. */
const unchanged = (name: string, sums: string) =>
  `sha256sum -c -s ${sums} && echo ${name}=unchanged || echo ${name}=changed`;

/**
 * Prints `KEY=<numbers>`: the syscalls of the seccomp audit records in L1's kernel log that a
 * filter let through and logged (SCMP_ACT_LOG, `--seccomp-log-failures`).
 */
function loggedSyscalls(key: string): string {
  return `echo "${key}=$(dmesg | grep 'type=1326 .* code=0x7ffc0000' | sed -n 's/.* syscall=\\([0-9]*\\) .*/\\1/p' | sort -un | tr '\\n' ' ')"`;
}

/** Prints `NAME=<what the first 4 KiB of IMAGE hold, zero bytes dropped>` (see agent/write.sh). */
const firstBlock = (name: string, image: string) =>
  `echo "${name}=$(head -c 4096 ${image} | tr -d '\\0')"`;

/**
 * Defines `jail_count`, which prints `<bwrap processes> <jailed device processes>` running in
 * L1 now: the jail's launchers, and Deno processes started with the device-process command.
 */
const JAIL_COUNT = `jail_count() {
  b=0 d=0
  for p in /proc/[0-9]*; do
    read -r comm 2>/dev/null <"$p/comm" || continue
    case "$comm" in
      bwrap) b=$((b + 1)) ;;
      deno) tr '\\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q " ${DEVICE_PROCESS_COMMAND}" && d=$((d + 1)) ;;
    esac
  done
  echo "$b $d"
}`;
/** `jail_count`'s answer while a VM with `devices` jailed devices runs, and once none is left. */
const jailedWhileRunning = (devices: number) => new RegExp(`^([1-9]\\d*) ${devices}$`);
const NO_JAIL = "0 0";

/**
 * `RELIABILITY_CRASH_ROUNDS=N`: the rounds of `blk-crash-rounds` (2 by default: one kill of each
 * kind; the long run is `deno task crash-rounds`).
 */
const CRASH_ROUNDS = Number(Deno.env.get("RELIABILITY_CRASH_ROUNDS") ?? 2);
/** What one crash round may take in L1: an L2 boot with one jailed device, writes, checks. */
const CRASH_ROUND_SECONDS = 75;
/** `RELIABILITY_SOAK_SECONDS=N`: how long the soak's guest works (the long run: `deno task soak`). */
const SOAK_SECONDS = Number(Deno.env.get("RELIABILITY_SOAK_SECONDS") ?? 45);
/**
 * How much a process's private memory may grow after the soak's warm-up: V8's heaps grow in
 * steps before they settle, a leak grows without end (the long run's slope tells them apart).
 */
const SOAK_GROWTH_LIMIT_KIB = 16 << 10;
/** MiB each of `blk-fio`'s two jobs writes and verifies (2048 requests of 4 KiB each way). */
const FIO_MIB = 8;
/** The tools disk with fio that `blk-fio` builds in L1 (`blk-fio-pool` uses it too). */
const FIO_TOOLS = "/tmp/blk-fio-tools.img";
/**
 * A policy directory in L1: the shipped policies, with block_device.policy's rule for `syscall`
 * replaced by `syscall: RULE`, or taken out where `rule` is empty; fails where it has no such rule.
 */
const policiesWithRule = (dir: string, syscall: string, rule: string) =>
  `rm -rf ${dir} && mkdir -p ${dir} && cp "$PROJECT"/seccomp/x86_64/*.policy ${dir}/ || exit 1
grep -q '^${syscall}:' ${dir}/block_device.policy || { echo "no ${syscall} rule to change"; exit 1; }
sed -i '${
    rule ? `s/^${syscall}:.*/${syscall}: ${rule}/` : `/^${syscall}:/d`
  }' ${dir}/block_device.policy`;
/** The shipped policies with block_device.policy's io_uring_setup returning EPERM. */
const NO_URING_DIR = "/tmp/policy-no-uring";
const NO_URING = policiesWithRule(NO_URING_DIR, "io_uring_setup", "return EPERM");

/** What fio.sh must report: status 0, every block written and verified, both queues busy. */
function fioChecks(agent: Map<string, string>): void {
  assert.equal(agent.get("fio"), "0", "fio ends with status 0: every block verified");
  const kib = FIO_MIB * 2 * 1024;
  assert.equal(agent.get("fio_result"), `0 ${kib} ${kib}`, "error 0, all written, all read");
  const irqs = (agent.get("fio_queue_irqs") ?? "").split(" ").map(Number);
  assert.equal(irqs.length, 2, "a queue per vCPU (num-queues defaults to the vCPUs)");
  assert.ok(irqs.every((n) => n > 0), `both queues completed requests: ${irqs}`);
}

/**
 * fio.sh on a fresh disk from two vCPUs, fio from the tools disk: `prepare` runs first in L1,
 * `args` go to the VMM.
 */
function fioTest(name: string, title: string, prepare: string, args = ""): LinuxTest {
  const image = `/tmp/${name}.img`;
  return {
    name,
    title,
    command: `${prepare}
rm -f ${image} && truncate -s ${2 * FIO_MIB}M ${image}
${
      agentBoot(
        `${args} -c 2 -m 512 -b ${image} -b ${FIO_TOOLS},ro`,
        `agent.run=fio agent.fio=vda agent.tools=vdb agent.fio_mib=${FIO_MIB}`,
      )
    }`,
    timeoutSeconds: 240,
    check: (_, agent) => fioChecks(agent),
  };
}

/**
 * virtio-blk and virtio-rng. `blk-devices` builds a root disk (64 MiB, the agent as
 * /sbin/init) and a read-only data disk (24 MiB, ext4 with /hello) in L1's /tmp and boots them
 * with `-b`; `blk-crash` boots the same images with the older spellings and kills the VMM right
 * after the guest synced a file; `blk-mq` writes from four processes at once to a four-queue
 * disk on two vCPUs; `blk-fio` runs fio with verification at depth 32 from both vCPUs (fio from
 * a tools disk, {@link MKTOOLSDISK}); `blk-ro-root` boots a fresh read-only root without virtio-rng.
 */
const BLOCK_TESTS: LinuxTest[] = [
  {
    name: "blk-devices",
    title: "virtio-blk: -b PATH,root makes the guest's root /dev/vda, ext4 read-write",
    command: `${MKROOTFS} /tmp/blk-root.img 64M || exit 1
mkdir -p /tmp/blk-data && echo data-token >/tmp/blk-data/hello
mkfs.ext4 -q -d /tmp/blk-data /tmp/blk-ro.img 24M || exit 1
sha256sum /tmp/blk-ro.img >/tmp/blk-ro.sha
rm -f /tmp/blk-raw.img && truncate -s 8M /tmp/blk-raw.img
before=$(du -k /tmp/blk-root.img | cut -f1)
${
      agentBoot(
        "-b /tmp/blk-root.img,root,id=blk-root -b /tmp/blk-ro.img,ro,id=blk-ro-serial " +
          "-b /tmp/blk-raw.img,sparse=false,block-size=4096",
        `agent.run=disks,rodisk,rebind,rng,trim,raw,persist agent.token=${TOKEN}-1`,
      )
    }
status=$?
${unchanged("ro_image", "/tmp/blk-ro.sha")}
# The scratch disk: the guest's 2 MiB at 1 and 3 MiB, zeros in the six other MiB.
raw() { dd if=/tmp/blk-raw.img bs=1M skip=$1 count=1 2>/dev/null; }
echo "raw_image_sha=$({ raw 1; raw 3; } | sha256sum | cut -c1-16)"
zero=$(head -c 1048576 /dev/zero | sha256sum)
zeros=0
for mib in 0 2 4 5 6 7; do [ "$(raw $mib | sha256sum)" = "$zero" ] && zeros=$((zeros + 1)); done
echo "raw_image_zero_mib=$zeros"
echo "root_image_kb=$before $(du -k /tmp/blk-root.img | cut -f1)"
fsck=$(e2fsck -fn /tmp/blk-root.img 2>&1)
echo "root_fsck=$?"
echo "$fsck" | grep -v -e "^Pass " -e "^e2fsck "
exit $status`,
    check: (r, agent) => {
      assert.equal(agent.get("root"), "/dev/vda ext4 rw");
      assert.match(r.output, /^root_fsck=0$/m, "the file system is clean after a power-off");
    },
  },
  {
    name: "blk-devices",
    title: "virtio-blk: fstrim on a sparse disk punches the freed blocks out of the image",
    check: (r, agent) => {
      assert.ok(Number(agent.get("discard_max")) > 0, "discard");
      assert.ok(Number(agent.get("write_zeroes_max")) > 0, "write-zeroes");
      assert.ok(Number(agent.get("trim")) >= 16 << 20, `trimmed ${agent.get("trim")}`);
      const [before, after] = (/^root_image_kb=(\d+) (\d+)$/m.exec(r.output) ?? []).slice(1);
      assert.ok(before && after, "image sizes");
      // Without the discard the 16 MiB written and deleted would still take room in the image.
      assert.ok(Number(after) - Number(before) < 12 << 10, `image ${before} KiB -> ${after} KiB`);
    },
  },
  {
    name: "blk-devices",
    title: "virtio-blk: disks are vda, vdb, vdc in command-line order, with their sizes and ids",
    check: (_r, agent) => {
      assert.equal(agent.get("disk_vda"), "131072 0 blk-root");
      assert.equal(agent.get("disk_vdb"), "49152 1 blk-ro-serial");
      assert.equal(agent.get("disk_vdc")?.trim(), "16384 0");
      assert.equal(agent.get("disk_vdd"), undefined);
    },
  },
  {
    name: "blk-devices",
    title: "virtio-blk: O_DIRECT writes land at their offsets in the image and read back the same",
    check: (r, agent) => {
      assert.equal(agent.get("raw_read"), "same");
      assert.match(agent.get("raw_sha") ?? "", /^[0-9a-f]{16}$/);
      assert.match(r.output, new RegExp(`^raw_image_sha=${agent.get("raw_sha")}$`, "m"));
      assert.match(r.output, /^raw_image_zero_mib=6$/m, "the rest of the image is untouched");
    },
  },
  {
    name: "blk-devices",
    title: "virtio-blk: block-size=4096 and sparse=false reach the guest's queue limits",
    check: (_r, agent) => {
      assert.equal(agent.get("raw_lbs"), "4096");
      assert.equal(agent.get("raw_discard_max"), "0", "no discard on a disk that is not sparse");
    },
  },
  {
    name: "blk-devices",
    title: "virtio-blk: a read-only disk refuses writes and rw mounts, reads, and stays unchanged",
    check: (r, agent) => {
      assert.equal(agent.get("ro_flag"), "1");
      assert.equal(agent.get("ro_write"), "fail");
      assert.notEqual(agent.get("ro_mount_rw"), "rw");
      assert.equal(agent.get("ro_file"), "data-token");
      assert.match(r.output, /^ro_image=unchanged$/m);
    },
  },
  {
    name: "blk-devices",
    title: "virtio-blk: a disk unbound from virtio-pci and bound again reads the same data",
    check: (_r, agent) => {
      assert.match(agent.get("rebind") ?? "", /^0000:00:[0-9a-f]{2}\.0 vdb gone=yes vd[a-z]$/);
      assert.equal(agent.get("rebind_read"), "same");
    },
  },
  {
    name: "blk-devices",
    title: "virtio-rng (on by default): /dev/hwrng gives random bytes from virtio_rng",
    check: (_r, agent) => {
      assert.match(agent.get("rng_current") ?? "", /^virtio_rng/);
      const [a, b] = [agent.get("rng_a") ?? "", agent.get("rng_b") ?? ""];
      assert.match(a, /^[0-9a-f]{128}$/, "64 bytes");
      assert.match(b, /^[0-9a-f]{128}$/, "64 bytes");
      assert.notEqual(a, b);
      assert.doesNotMatch(a, /^0+$/);
    },
  },
  {
    name: "blk-crash",
    title: "virtio-blk: --rwroot/--disk; a file written in one boot is there in the next",
    needs: ["blk-devices"],
    alone: true,
    command:
      `[ -f /tmp/blk-root.img ] || { echo "no images: blk-devices did not build them"; exit 1; }
${JAIL_COUNT}
${
        onConsoleLine(
          agentBoot(
            "--rwroot /tmp/blk-root.img --disk /tmp/blk-ro.img",
            `agent.run=disks,persist,crash agent.token=${TOKEN}-2 agent.action=hang`,
          ),
          "@@AGENT HANG",
          `echo "jail_before=$(jail_count)"
    kill -KILL $vmm
    break`,
        )
      }
echo "vmm_status=$?"
# The jails die with the VMM (bubblewrap's --die-with-parent): give them a moment to go.
i=0
while [ "$(jail_count)" != "${NO_JAIL}" ] && [ $i -lt 20 ]; do sleep 0.25; i=$((i + 1)); done
echo "jail_after=$(jail_count)"
e2fsck -fn /tmp/blk-root.img
echo "fsck_status=$?"
echo "crash_file=$(debugfs -R 'cat /crash.txt' /tmp/blk-root.img 2>/dev/null)"
${unchanged("ro_image", "/tmp/blk-ro.sha")}`,
    check: (r, agent) => {
      assert.equal(agent.get("root"), "/dev/vda ext4 rw");
      assert.equal(agent.get("disk_vda")?.trim(), "131072 0");
      assert.equal(agent.get("disk_vdb")?.trim(), "49152 1");
      assert.equal(agent.get("persist_old"), `${TOKEN}-1`);
      assert.equal(agent.get("persist_new"), `${TOKEN}-2`);
      assert.match(r.output, /^ro_image=unchanged$/m);
    },
  },
  {
    name: "blk-crash",
    title: "virtio-blk: after SIGKILL of the VMM right after a guest sync, the image is clean",
    check: (r, agent) => {
      assert.equal(agent.get("crash_synced"), `${TOKEN}-2`);
      assert.match(r.output, /@@AGENT HANG\n(.*\n)*vmm_status=137$/m, "killed after the sync");
      assert.match(r.output, /^fsck_status=0$/m);
      assert.match(r.output, new RegExp(`^crash_file=${TOKEN}-2$`, "m"));
    },
  },
  {
    name: "blk-crash",
    title: "sandbox: after SIGKILL of the VMM no bubblewrap or jailed device process is left",
    check: (r) => {
      // Two disks, virtio-rng and the balloon, each in its own jail, until the VMM was killed.
      assert.match(lineValue(r, "jail_before"), jailedWhileRunning(4));
      assert.equal(lineValue(r, "jail_after"), NO_JAIL);
    },
  },
  {
    name: "blk-crash-rounds",
    title: `virtio-blk: ${CRASH_ROUNDS} SIGKILLs, of the VMM and of its device process by turns, ` +
      "at random moments of fsynced appends: no acknowledged record lost, e2fsck clean",
    command: crashRoundsScript(
      CRASH_ROUNDS,
      (token, image, raw) =>
        agentBoot(
          `--no-rng --no-balloon -b ${image} -b ${raw}`,
          `agent.action=acked agent.acked_raw=vdb agent.token=${token}`,
        ),
    ),
    withoutAgent: true,
    timeoutSeconds: 60 + CRASH_ROUND_SECONDS * CRASH_ROUNDS,
    check: (r) => {
      const rounds = crashRoundResults(r.output);
      console.log(`  ${crashRoundsSummary(rounds)}`);
      assert.equal(rounds.length, CRASH_ROUNDS, "every round reported");
      for (const round of rounds) {
        const what = `round ${round.round} (${round.target} killed after ${round.delayMs} ms)`;
        // A killed VMM dies of SIGKILL; a killed device ends the VM with an error (status 1); a
        // VMM whose L2 boot hung in the bed is killed by L1 (the summary counts those apart).
        assert.equal(round.vmmStatus, round.target === "vmm" || round.hung ? 137 : 1, what);
        assert.equal(round.jailLeft, 0, `${what}: the jail is gone`);
        assert.equal(round.fsck, 0, `${what}: e2fsck -fn after the journal's replay`);
        assert.equal(round.lost, 0, `${what}: acknowledged records lost`);
        assert.equal(round.lostEarlier, 0, `${what}: earlier rounds' records lost`);
        assert.equal(round.lostRaw, 0, `${what}: acknowledged O_DIRECT blocks lost`);
      }
      const deviceKills = rounds.filter((round) => !round.hung && round.target === "device").length;
      const reported = r.output.match(/device process \d+ was killed by SIGKILL/g) ?? [];
      assert.equal(reported.length, deviceKills, "the VMM named each killed device process");
    },
  },
  {
    name: "soak",
    title: `a ${SOAK_SECONDS} s soak of virtio-blk and virtio-rng work: every read-back intact; ` +
      "after warm-up the VMM's and its device processes' descriptors stay put, memory does not grow",
    command: `truncate -s 64M /tmp/soak.img
${soakScript(agentBoot("-b /tmp/soak.img", `agent.action=soak agent.seconds=${SOAK_SECONDS}`))}`,
    timeoutSeconds: 120 + SOAK_SECONDS,
    check: (r) => {
      const [rounds, bad] = lineValue(r, "soak_done").split(" ").map(Number);
      assert.ok(rounds > 0, "the guest did some rounds");
      assert.equal(bad, 0, "rounds whose read-back differed or failed");
      const samples = soakSamples(r.output);
      assert.ok(samples.length >= 6, `${samples.length} samples`);
      const drift = soakDrift(samples);
      console.log(`  ${soakSummary(SOAK_SECONDS, rounds, drift)}`);
      assert.ok(drift.warm.devices >= 2, "virtio-blk and virtio-rng in device processes");
      for (const s of drift.after) {
        const at = `at ${s.seconds} s`;
        assert.equal(s.devices, drift.warm.devices, `${at}: device processes`);
        assert.equal(s.vmmFds, drift.warm.vmmFds, `${at}: the VMM's descriptors`);
        assert.equal(s.deviceFds, drift.warm.deviceFds, `${at}: the device processes' descriptors`);
      }
      assert.ok(drift.vmmGrowthKiB <= SOAK_GROWTH_LIMIT_KIB, "the VMM's private memory grew");
      assert.ok(drift.deviceGrowthKiB <= SOAK_GROWTH_LIMIT_KIB, "device processes' memory grew");
    },
  },
  {
    name: "blk-mq",
    title:
      "virtio-blk: num-queues=4 on 2 vCPUs gives the guest a queue per vCPU; 4 O_DIRECT writers at once land intact",
    command: `rm -f /tmp/blk-mq.img && truncate -s 8M /tmp/blk-mq.img
${agentBoot("-c 2 -b /tmp/blk-mq.img,num-queues=4", "agent.run=mq agent.mq=vda")}
status=$?
echo "mq_image_sha=$(head -c 4194304 /tmp/blk-mq.img | sha256sum | cut -c1-16)"
exit $status`,
    check: (r, agent) => {
      // Linux's virtio_blk uses at most one virtqueue per CPU of the guest (of the 4 offered).
      assert.equal(agent.get("mq_queues"), "2", "a blk-mq hardware queue per vCPU");
      assert.equal(agent.get("mq_read"), "same");
      assert.equal(lineValue(r, "mq_image_sha"), agent.get("mq_sha"), "the image holds them");
    },
  },
  fioTest(
    "blk-fio",
    "virtio-blk: fio verifies 4 KiB random writes at depth 32 from both vCPUs, each on its own queue",
    `${MKTOOLSDISK} ${FIO_TOOLS} 128M /usr/bin/fio || exit 1`,
  ),
  {
    ...fioTest(
      "blk-fio-pool",
      "virtio-blk without io_uring (the jail's policy refuses io_uring_setup): fio verifies the same on the thread pool",
      NO_URING,
      `--seccomp-policy-dir ${NO_URING_DIR}`,
    ),
    needs: ["blk-fio"],
    ownPolicies: true,
    check: (r, agent) => {
      fioChecks(agent);
      assert.match(
        r.output,
        /no io_uring \(io_uring_setup failed: EPERM[^\n]*\); serving requests on 8 threads/,
      );
    },
  },
  {
    name: "blk-ro-root",
    title: "--root after --disk: a read-only root disk /dev/vdb; --no-rng: no hardware RNG",
    command: `${MKROOTFS} /tmp/blk-roroot.img 32M || exit 1
sha256sum /tmp/blk-roroot.img >/tmp/blk-roroot.sha
truncate -s 8M /tmp/blk-first.img
${
      agentBoot(
        "--disk /tmp/blk-first.img --root /tmp/blk-roroot.img --no-rng",
        "agent.run=disks,rng,persist agent.token=x",
      )
    }
status=$?
${unchanged("root_image", "/tmp/blk-roroot.sha")}
exit $status`,
    check: (r, agent) => {
      assert.equal(agent.get("root"), "/dev/vdb ext4 ro");
      assert.equal(agent.get("disk_vda")?.trim(), "16384 1");
      assert.equal(agent.get("disk_vdb")?.trim(), "65536 1");
      assert.equal(agent.get("persist_write"), "fail");
      assert.doesNotMatch(agent.get("rng_current") ?? "", /virtio/);
      assert.equal(agent.get("rng_a"), "");
      assert.match(r.output, /^root_image=unchanged$/m);
    },
  },
];

/** A policy directory: the shipped policies, with `syscall`'s rule taken out of block_device's. */
const policiesWithout = (dir: string, syscall: string) => policiesWithRule(dir, syscall, "");
/** A fresh 8 MiB scratch disk image. */
const scratch = (image: string) => `rm -f ${image} && truncate -s 8M ${image}`;
/**
 * The policy directory of the seccomp scenarios: block_device.policy without pwritev. Their disks
 * take `async-executor=epoll`, so that a write is a `pwritev` of the device process (on io_uring
 * the kernel would write for the ring, unseen by the filter).
 */
const NO_PWRITEV = "/tmp/policy-no-pwritev";

/**
 * The device sandbox: every virtio device runs in its own bubblewrap jail under a seccomp
 * filter (the default). A policy without a syscall the block device needs kills it on the
 * guest's first write, and the VM ends with that story; with `--seccomp-log-failures` the same
 * VM runs on. `--disable-sandbox` runs the devices as Workers in the VMM, as before.
 */
const SANDBOX_TESTS: LinuxTest[] = [
  {
    name: "seccomp-kill",
    ownPolicies: true,
    title: "sandbox: a block policy without pwritev: the guest's first write kills the device, " +
      "and the VMM says which syscall and policy in one error line",
    command: `${policiesWithout(NO_PWRITEV, "pwritev")}
${scratch("/tmp/seccomp-kill.img")}
${
      agentBoot(
        `--seccomp-policy-dir ${NO_PWRITEV} -b /tmp/seccomp-kill.img,async-executor=epoll`,
        `agent.run=write agent.token=${TOKEN}-kill`,
      )
    }
echo "vmm_status=$?"
${firstBlock("image_block", "/tmp/seccomp-kill.img")}`,
    cutShort: true,
    check: (r, agent) => {
      assert.equal(agent.get("write_begin"), "vda", "the guest booted and began its write");
      assert.equal(agent.get("write"), undefined, "the write never completed");
      assert.notEqual(lineValue(r, "vmm_status"), "0");
      assert.match(r.output, /^\[INFO\] vm ended: error$/m);
      const errors = r.lines.filter((l) => l.text.startsWith("[ERROR]")).map((l) => l.text);
      assert.equal(errors.length, 1, `one error line:\n${r.output}`);
      assert.match(
        errors[0],
        new RegExp(
          "^\\[ERROR\\] virtio-blk-vda: device process \\d+ was killed by SIGSYS: seccomp denied " +
            `syscall \\d+ \\(pwritev\\), which ${NO_PWRITEV}/block_device\\.policy does not allow$`,
        ),
      );
      assert.doesNotMatch(r.output, /\bat .*\.ts:\d+/, "no stack trace");
      assert.equal(lineValue(r, "image_block"), "", "nothing reached the image");
    },
  },
  {
    name: "seccomp-log",
    ownPolicies: true,
    // Reads, after clearing it, the kernel log all of L1 shares.
    alone: true,
    title: "sandbox: with --seccomp-log-failures the same VM runs to its end; the kernel logs " +
      "the pwritev",
    command: `${policiesWithout(NO_PWRITEV, "pwritev")}
${scratch("/tmp/seccomp-log.img")}
dmesg -c >/dev/null
${
      agentBoot(
        `--seccomp-policy-dir ${NO_PWRITEV} --seccomp-log-failures -b /tmp/seccomp-log.img,async-executor=epoll`,
        `agent.run=write agent.token=${TOKEN}-log`,
      )
    }
status=$?
${firstBlock("image_block", "/tmp/seccomp-log.img")}
# Audit records of calls the filter logged and let through (SCMP_ACT_LOG): their numbers.
${loggedSyscalls("logged_syscalls")}
exit $status`,
    check: (r, agent) => {
      assert.equal(agent.get("write"), "ok");
      assert.equal(agent.get("write_read"), `${TOKEN}-log`);
      assert.equal(lineValue(r, "image_block"), `${TOKEN}-log`);
      assert.match(r.output, /vm ended: shutdown/);
      // Only what the test took out of the policy: the shipped set covers the rest of the path.
      assert.deepEqual(syscallNames(r, "logged_syscalls"), ["pwritev"]);
    },
  },
  {
    name: "no-sandbox",
    title: "--disable-sandbox: virtio-blk and virtio-rng run unjailed, in the VMM, as before",
    alone: true,
    command: `${JAIL_COUNT}
${scratch("/tmp/no-sandbox.img")}
${
      onConsoleLine(
        agentBoot(
          "--disable-sandbox -b /tmp/no-sandbox.img",
          `agent.run=disks,rng,write agent.token=${TOKEN}-nosb agent.action=echo`,
        ),
        "@@AGENT END",
        `echo "jail_during=$(jail_count)"
    ${typeLines(["unjailed"])}`,
      )
    }
status=$?
${firstBlock("image_block", "/tmp/no-sandbox.img")}
exit $status`,
    check: (r, agent) => {
      assert.equal(lineValue(r, "jail_during"), NO_JAIL, "no jail while the VM ran");
      assert.equal(agent.get("disk_vda")?.trim(), "16384 0");
      assert.equal(agent.get("write"), "ok");
      assert.equal(lineValue(r, "image_block"), `${TOKEN}-nosb`);
      assert.match(agent.get("rng_current") ?? "", /^virtio_rng/);
      assert.match(agent.get("rng_a") ?? "", /^[0-9a-f]{128}$/);
      assert.notEqual(agent.get("rng_a"), agent.get("rng_b"));
      assert.match(r.output, /^echo=unjailed$/m);
    },
  },
];

/** `crosvm ARGS` in L1: a control command (or any other) of this checkout. */
const ctl = (args: string) => `"$DENO" run --allow-all "$PROJECT/main.ts" ${args}`;
/** Prints `NAME=<VmRSS of the VMM in KiB>` (the scenario's VMM is `$vmm`). */
const vmRss = (name: string) =>
  `echo "${name}=$(awk '$1 == "VmRSS:" { print $2 }' /proc/$vmm/status)"`;
/** What the balloon scenario inflates: half the guest's 512 MiB. */
const BALLOON_BYTES = 256 << 20;
/** The resize scenario's data disk, before and after. */
const RESIZE_FROM = 16 << 20;
const RESIZE_TO = 48 << 20;

/** The `key=` lines of a scenario's output, in order, with the host time each arrived. */
function timedValues(r: ScenarioResult, key: string): { ms: number; value: string }[] {
  return r.lines.filter((l) => l.text.startsWith(`${key}=`))
    .map((l) => ({ ms: l.ms, value: l.text.slice(key.length + 1) }));
}

/**
 * The control plane on Linux: `crosvm powerbtn`, `balloon` and `balloon_stats`, `disk resize`
 * and `suspend --full`/`resume --full`, each from L1's shell against a VM's control socket,
 * with the guest's agent taking its turns (agent/powerbtn.sh, balloon.sh, resize.sh, clock.sh).
 */
const CONTROL_TESTS: LinuxTest[] = [
  {
    name: "ctl-powerbtn",
    title: "crosvm powerbtn: the guest sees KEY_POWER from its ACPI button and powers off; exit 0",
    command: onConsoleLine(
      boot("powerbtn", "-s /tmp/ctl-powerbtn.sock"),
      "powerbtn_ready=",
      `${ctl("powerbtn /tmp/ctl-powerbtn.sock")}; echo "powerbtn_status=$?"`,
    ),
    check: (r, agent) => {
      assert.equal(lineValue(r, "powerbtn_status"), "0");
      assert.equal(agent.get("powerbtn"), "pressed");
      assert.match(r.output, /vm ended: shutdown/);
    },
  },
  {
    name: "ctl-balloon",
    title: "crosvm balloon: half the guest's memory goes back to the host and returns on deflate",
    timeoutSeconds: 240,
    command: onConsoleLines(
      agentBoot("-m 512 -s /tmp/ctl-balloon.sock", "agent.action=balloon"),
      [
        [
          "balloon_step=1",
          `${vmRss("rss_before_kb")}
    ${ctl(`balloon ${BALLOON_BYTES} /tmp/ctl-balloon.sock --wait`)}; echo "inflate_status=$?"
    ${vmRss("rss_inflated_kb")}
    echo "host_stats=$(${ctl("balloon_stats /tmp/ctl-balloon.sock")} | tr -d ' \\n')"
    ${typeLines(["inflated"])}`,
        ],
        [
          "balloon_step=2",
          `${ctl("balloon 0 /tmp/ctl-balloon.sock --wait")}; echo "deflate_status=$?"
    ${typeLines(["deflated"])}`,
        ],
        ["balloon_step=3", typeLines(["done"])],
      ],
    ),
    check: (r) => {
      assert.equal(lineValue(r, "inflate_status"), "0");
      assert.equal(lineValue(r, "deflate_status"), "0");
      const kib = BALLOON_BYTES / 1024;
      const dropped = Number(lineValue(r, "rss_before_kb")) -
        Number(lineValue(r, "rss_inflated_kb"));
      console.log(`  balloon: the VMM's RSS fell by ${dropped} KiB for a ${kib} KiB balloon`);
      assert.ok(dropped >= 0.8 * kib, `RSS fell by ${dropped} KiB, under 80% of ${kib} KiB`);
      const avail = timedValues(r, "balloon_avail_kb").map((v) => Number(v.value.split(" ")[0]));
      assert.equal(avail.length, 3, "three reports");
      assert.ok(avail[0] - avail[1] >= 0.8 * kib, `MemAvailable ${avail[0]} -> ${avail[1]} kB`);
      assert.ok(avail[2] >= avail[0] - 0.1 * kib, `deflated: MemAvailable back to ${avail[2]} kB`);
      const reply = JSON.parse(lineValue(r, "host_stats")).BalloonStats;
      assert.equal(reply.balloon_actual, BALLOON_BYTES);
      const { total_memory: total, free_memory: free, available_memory: available } = reply.stats;
      assert.ok(total > 400 << 20 && total <= 512 << 20, `total_memory ${total}`);
      assert.ok(free > 0 && free < total, `free_memory ${free}`);
      assert.ok(available > 0 && available < total, `available_memory ${available}`);
    },
  },
  {
    name: "ctl-resize",
    title: "crosvm disk resize: a mounted ext4 disk grows, resize2fs grows it online, it fills",
    command: `${MKTOOLSDISK} /tmp/ctl-tools.img 16M /usr/sbin/resize2fs || exit 1
rm -f /tmp/ctl-data.img
mkfs.ext4 -q /tmp/ctl-data.img ${RESIZE_FROM / 1024}K || exit 1
${
      onConsoleLine(
        agentBoot(
          "-s /tmp/ctl-resize.sock -b /tmp/ctl-data.img -b /tmp/ctl-tools.img,ro",
          "agent.action=resize agent.resize=vda agent.tools=vdb",
        ),
        "resize_ready",
        `${ctl(`disk resize 0 ${RESIZE_TO} /tmp/ctl-resize.sock`)}; echo "resize_status=$?"`,
      )
    }
status=$?
echo "image_bytes=$(stat -c %s /tmp/ctl-data.img)"
e2fsck -fn /tmp/ctl-data.img >/dev/null 2>&1
echo "data_fsck=$?"
exit $status`,
    check: (r, agent) => {
      assert.equal(lineValue(r, "resize_status"), "0");
      assert.equal(agent.get("resize_before")?.split(" ")[0], String(RESIZE_FROM));
      assert.equal(agent.get("resize_after"), String(RESIZE_TO), "blockdev --getsize64");
      assert.match(
        agent.get("resize_dmesg") ?? "",
        /vda: detected capacity change from 32768 to 98304/,
      );
      assert.equal(agent.get("resize2fs"), "0");
      const [, fsBefore] = (agent.get("resize_before") ?? "").split(" ").map(Number);
      assert.ok(Number(agent.get("resize_fs_kb")) > 2.5 * fsBefore, "the file system grew");
      assert.equal(
        agent.get("resize_fill"),
        `${RESIZE_FROM / (1 << 20) + 8} 0`,
        "filled past 16 MiB",
      );
      assert.equal(lineValue(r, "image_bytes"), String(RESIZE_TO));
      assert.equal(lineValue(r, "data_fsck"), "0", "clean after the guest unmounted it");
    },
  },
  {
    name: "ctl-suspend",
    title:
      "crosvm suspend --full for 6 s: the guest's clock does not jump and its disk I/O goes on",
    command: `${scratch("/tmp/ctl-clock.img")}
${
      onConsoleLines(
        agentBoot(
          "-s /tmp/ctl-suspend.sock -b /tmp/ctl-clock.img",
          `agent.action=clock agent.clock=vda agent.token=${TOKEN}`,
        ),
        [[
          "tick=",
          detached(`sleep 3
      ${ctl("suspend --full /tmp/ctl-suspend.sock")}; echo "suspend_status=$?"
      sleep 6
      ${ctl("resume --full /tmp/ctl-suspend.sock")}; echo "resume_status=$?"`),
        ]],
      )
    }`,
    check: (r) => {
      assert.equal(lineValue(r, "suspend_status"), "0");
      assert.equal(lineValue(r, "resume_status"), "0");
      const ticks = timedValues(r, "tick").map((t) => {
        const [centis, ok] = t.value.split(" ");
        return { ms: t.ms, guestMs: Number(centis) * 10, ok };
      });
      assert.equal(ticks.length, 16);
      assert.ok(ticks.every((t) => t.ok === "ok"), "every block read back as written");
      // The longest gap between ticks as the host saw them is the suspend.
      const gaps = ticks.slice(1).map((t, i) => ({
        host: t.ms - ticks[i].ms,
        guest: t.guestMs - ticks[i].guestMs,
      }));
      const gap = gaps.reduce((a, b) => (b.host > a.host ? b : a));
      console.log(`  suspend: ${gap.host} ms on the host, ${gap.guest} ms in the guest`);
      assert.ok(gap.host >= 5500, `the suspend shows on the host: ${gap.host} ms`);
      assert.ok(gap.guest <= gap.host - 4000, `the guest saw ${gap.guest} ms of it`);
    },
  },
];

/** The guest's MAC in the network tests, and the bytes sent each way over TCP. */
const NET_MAC = "52:54:00:12:34:56";
const NET_PAYLOAD_BYTES = 4 << 20;
/**
 * L1's side of the TCP test, both listening sockets bound before the guest boots: sends
 * /tmp/net-payload-PORT to each of the first `fetches` clients on PORT (a guest that rebinds its
 * driver fetches again), and reads what the first client on PORT + 1 sends until it closes its
 * side: `l1_received=<bytes> <sha256>`. Gives up after two minutes without a client.
 */
const netServer = (port: number, fetches: number) =>
  `import hashlib, socket, threading
def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(2)
    s.settimeout(120)
    return s
send, receive = listen(${port}), listen(${port + 1})
data = open("/tmp/net-payload-${port}", "rb").read()
def serve():
    for _ in range(${fetches}):
        c, _ = send.accept()
        c.sendall(data)
        c.close()
threading.Thread(target=serve).start()
c, _ = receive.accept()
h, n = hashlib.sha256(), 0
while b := c.recv(1 << 16):
    h.update(b)
    n += len(b)
c.close()
print(f"l1_received={n} {h.hexdigest()}", flush=True)`;

/** The descriptor a parent hands the VMM its TAP on (`tap-fd`). */
const PARENT_TAP_FD = 9;
/** The MTU the parent gives its TAP: the guest must be told it (VIRTIO_NET_F_MTU). */
const PARENT_TAP_MTU = 4000;
/**
 * A parent that owns a TAP, as a management daemon would: it opens `name` with IFF_TAP,
 * IFF_NO_PI and IFF_VNET_HDR (TUNSETIFF, `<linux/if_tun.h>`), gives it `address` and
 * {@link PARENT_TAP_MTU} and brings it up with `ip`, and execs its arguments with the TAP on
 * {@link PARENT_TAP_FD}.
 */
const tapParent = (name: string, address: string) =>
  `import fcntl, os, struct, subprocess, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"${name}", 0x0002 | 0x1000 | 0x4000))
subprocess.run(["ip", "addr", "add", "${address}", "dev", "${name}"], check=True)
subprocess.run(["ip", "link", "set", "${name}", "mtu", "${PARENT_TAP_MTU}", "up"], check=True)
os.dup2(fd, ${PARENT_TAP_FD})
os.execvp(sys.argv[1], sys.argv[1:])`;

/** How a {@link netTest} scenario sets its NIC up, beyond a TAP from `host-ip`. */
interface NetTestOptions {
  /** Its network 10.77.`subnet`.0/24 and its ports 8000 + 2 * `subnet` and the next. */
  subnet: number;
  /** Added to `--net`. */
  netKeys?: string;
  /** Added to the VMM's options. */
  vmArgs?: string;
  /** Queue pairs the driver must use. */
  queues?: number;
  /** L1 makes the TAP and starts the VMM with it as a descriptor (`tap-fd`). */
  tapFd?: boolean;
  /** The kernel moves the frames: a vhost worker must run in L1. */
  vhost?: boolean;
  /** The guest then unbinds and binds its driver and fetches the payload again (netrebind.sh). */
  rebind?: boolean;
}

/**
 * A virtio-net scenario on a TAP in L1: the VMM creates `vmtapN` as 10.77.`subnet`.1/24
 * (`host-ip`, with `netKeys` added), or with `tapFd` is handed a TAP a parent made
 * ({@link tapParent}); the (jailed, by default) device moves the frames, the guest pings L1 and
 * reads 4 MiB over TCP from a Python server on L1's side (receive offloads on: the TAP hands over
 * TSO frames). Each scenario has its own subnet and ports, so they can run side by side in L1.
 */
function netTest(test: Omit<LinuxTest, "command" | "check">, options: NetTestOptions): LinuxTest {
  const { subnet, netKeys = "", vmArgs = "", queues = 1, tapFd, vhost, rebind } = options;
  const port = 8000 + 2 * subnet;
  const queueNames = (kind: string) => Array.from({ length: queues }, (_, i) => `${kind}-${i}`);
  const host = `10.77.${subnet}.1`;
  const tap = tapFd
    ? `tap-fd=${PARENT_TAP_FD},mac=${NET_MAC}`
    : `host-ip=${host},netmask=255.255.255.0,mac=${NET_MAC}`;
  const params = `agent.net=10.77.${subnet}.2/24 agent.peer=${host} agent.port=${port} ` +
    `agent.send=${NET_PAYLOAD_BYTES}`;
  const vmOptions = `${vmArgs} --net ${tap}${netKeys}`;
  const booted = rebind
    ? agentBoot(vmOptions, `agent.run=net,netrebind ${params}`)
    : boot("net", `${vmOptions} -p "${params}"`);
  const counted = vhost
    ? onConsoleLine(
      booted,
      "net_mac=",
      `echo "l1_vhost_tasks=$(cat /proc/[0-9]*/task/*/comm 2>/dev/null | grep -c '^vhost-')"`,
    )
    : booted;
  const server = netServer(port, rebind ? 2 : 1);
  return {
    ...test,
    command: `head -c ${NET_PAYLOAD_BYTES} /dev/urandom >/tmp/net-payload-${port}
echo "l1_payload=$(sha256sum </tmp/net-payload-${port} | cut -d' ' -f1)"
${detached(`python3 -c '${server}'`)}
${
      tapFd
        ? `python3 -c '${tapParent(`fdtap${subnet}`, `${host}/24`)}' sh -c '${counted}'`
        : counted
    }`,
    check: (r, agent) => {
      const payload = `${NET_PAYLOAD_BYTES} ${lineValue(r, "l1_payload")}`;
      assert.equal(agent.get("net_mac"), NET_MAC);
      assert.equal(
        agent.get("net_mtu"),
        String(tapFd ? PARENT_TAP_MTU : 1500),
        "the TAP's MTU, offered with VIRTIO_NET_F_MTU",
      );
      assert.equal(
        agent.get("net_queues")?.trim(),
        [...queueNames("rx"), ...queueNames("tx")].join(" "),
      );
      assert.equal(agent.get("net_ping"), "3");
      assert.equal(agent.get("net_fetched"), payload);
      const sent = agent.get("net_sent");
      assert.match(sent ?? "", new RegExp(`^${NET_PAYLOAD_BYTES} [0-9a-f]{64}$`));
      assert.equal(lineValue(r, "l1_received"), sent, "what the guest sent, intact");
      if (vhost) assert.ok(Number(lineValue(r, "l1_vhost_tasks")) > 0, "a vhost worker runs");
      if (!rebind) return;
      assert.match(agent.get("netrebind") ?? "", /^0000:00:[0-9a-f]{2}\.0 gone=yes eth\d+$/);
      assert.equal(agent.get("netrebind_ping"), "3");
      assert.equal(agent.get("netrebind_fetched"), payload);
    },
  };
}

const NET_TESTS: LinuxTest[] = [
  netTest({
    name: "net-tap",
    title: "virtio-net: host-ip makes a TAP; the guest pings L1 and moves 4 MiB each way over TCP",
  }, { subnet: 0 }),
  netTest({
    name: "net-mq",
    title:
      "virtio-net, vq-pairs=2 on 2 vCPUs: the driver turns both pairs on over the control queue; ping and 4 MiB over TCP intact",
  }, { subnet: 1, netKeys: ",vq-pairs=2", vmArgs: "-c 2", queues: 2 }),
  netTest({
    name: "net-tap-fd",
    title:
      "virtio-net, tap-fd: a parent makes the TAP (MTU 4000) and hands the VMM its descriptor; the guest sees the MTU; ping and 4 MiB over TCP intact",
  }, { subnet: 2, tapFd: true }),
  // vhost-net: the kernel moves the frames; the jailed device only sets it up (its policy has no
  // writev: a frame sent from userspace would kill it). L1 has /dev/vhost-net (the bed loads
  // vhost_net). The driver's unbind and bind reset the device and start it afresh.
  netTest({
    name: "net-vhost",
    title:
      "vhost-net: the guest pings L1 and moves 4 MiB each way intact, then rebinds its driver, pings and fetches again",
  }, { subnet: 3, netKeys: ",vhost-net", vhost: true, rebind: true }),
  // With --disable-sandbox the device's Worker is the owner: the VMM's own mapping of RAM.
  netTest({
    name: "net-vhost-worker",
    title: "vhost-net with the device in a Worker of the VMM: the guest pings L1 and reads 4 MiB",
  }, { subnet: 4, netKeys: ",vhost-net", vmArgs: "--disable-sandbox", vhost: true }),
  {
    // Our hosts have no /dev/vhost-net and no vsock loopback, so these run for real only here.
    name: "ffi-vhost",
    title:
      "src/ffi/vhost.ts against L1's vhost-net (owner, features, memory table, a ring), and AF_VSOCK streams over L1's vsock loopback",
    command: `"$DENO" test --allow-all --no-check "$PROJECT/tests/ffi/vhost.test.ts" \
  "$PROJECT/tests/ffi/vsock_socket.test.ts"`,
    withoutAgent: true,
    check: (r) => assert.match(r.output, /ok \| 2 passed \| 0 failed/),
  },
];

/** The L1 side of the vsock scenarios ({@link ./vsock_host.py}). */
const VSOCK_HOST = `python3 "$PROJECT/tests/testbed/vsock_host.py"`;

/** The payload the vsock agent script moves (agent/vsock.sh), and its connections at once. */
const VSOCK_PAYLOAD = `${4 << 20}`;
const VSOCK_FETCHES = 17;

/** What a vsock scenario must show: every copy of the guest's payload intact, every way. */
function vsockMoved(r: ScenarioResult, agent: Map<string, string>): void {
  const payload = agent.get("vsock_payload");
  assert.equal(agent.get("vsock_served"), "0", "every connection served whole");
  assert.equal(agent.get("vsock_sent"), "0");
  assert.equal(agent.get("vsock_rebound"), "0");
  assert.equal(lineValue(r, "l1_vsock_fetched"), `${VSOCK_FETCHES} ${payload}`);
  assert.equal(lineValue(r, "l1_vsock_received"), `${VSOCK_PAYLOAD} ${payload}`);
  assert.equal(lineValue(r, "l1_vsock_rebound"), `${VSOCK_PAYLOAD} ${payload}`);
}

/**
 * vsock, jailed, both back ends (the guest's side is agent/vsock.sh): the guest serves 4 MiB on
 * port 1234 to 17 host connections at once, sends it to host port 5000 and, after its driver is
 * unbound and bound again, 5001; every copy's hash is the guest's. Userspace: the host's end is
 * the device's socket and `PATH_5000`, `PATH_5001`. vhost-vsock (L1 has /dev/vhost-vsock): it is
 * AF_VSOCK sockets (the fetches through the TypeScript API, {@link ./vsock_fetch.ts}), and a
 * second VM asking for the same CID is refused in one line.
 */
const VSOCK_TESTS: LinuxTest[] = [{
  name: "vsock-uds",
  title:
    "vsock over Unix sockets: 17 host connections fetch 4 MiB from a guest port at once, the guest sends 4 MiB to a host port, and again after a driver rebind; all intact",
  command: `uds=/tmp/vsock-uds.sock
${detached(`${VSOCK_HOST} receive \${uds}_5000 l1_vsock_received`)}
${detached(`${VSOCK_HOST} receive \${uds}_5001 l1_vsock_rebound`)}
${
    onConsoleLine(
      boot("vsock", `--vsock cid=3,uds-path=$uds`),
      "@@VSOCK READY",
      detached(`${VSOCK_HOST} fetch $uds 1234 ${VSOCK_FETCHES}`),
    )
  }`,
  check: vsockMoved,
}, {
  name: "vsock-vhost",
  title:
    "vhost-vsock: 17 AF_VSOCK connections fetch 4 MiB from a guest port at once, the guest sends 4 MiB to host ports before and after a driver rebind, all intact; a second VM with the same CID is refused",
  command: `${detached(`${VSOCK_HOST} vreceive 5000 l1_vsock_received`)}
${detached(`${VSOCK_HOST} vreceive 5001 l1_vsock_rebound`)}
${
    onConsoleLine(
      boot("vsock", "--vsock cid=4"),
      "@@VSOCK READY",
      `${
        detached(
          `"$DENO" run --allow-all "$PROJECT/tests/testbed/vsock_fetch.ts" 4 1234 ${VSOCK_FETCHES}`,
        )
      }
echo "l1_second_vm=$(${crosvm("--vsock cid=4 /no-kernel-needed")} 2>&1 | head -n 1)"`,
    )
  }`,
  check: (r, agent) => {
    vsockMoved(r, agent);
    assert.equal(
      lineValue(r, "l1_second_vm"),
      "crosvm: error: vsock: CID 4 is in use by another VM on this host",
    );
  },
}];

const TESTS: LinuxTest[] = [
  {
    name: "elf-reboot",
    title: "ELF vmlinux + initrd reaches userspace and `reboot` ends the VM with status 0",
    command: boot("reboot"),
    check: (r, agent) => {
      assert.equal(agent.get("cpus"), "1");
      assert.match(r.output, /vm ended: (reset|triple-fault)/);
    },
  },
  {
    name: "bundle-elf-reboot",
    title: "the single-file bundle: ELF vmlinux + initrd with jailed devices reaches userspace, " +
      "and `reboot` ends the VM with status 0",
    command: boot("reboot", "", "$L2_VMLINUX", `$PROJECT/${BUNDLE}`),
    needsBundle: true,
    check: (r, agent) => {
      assert.equal(agent.get("cpus"), "1");
      assert.match(r.output, /vm ended: (reset|triple-fault)/);
    },
  },
  {
    name: "bzimage-poweroff",
    title: "bzImage + initrd reaches userspace and `poweroff` ends the VM with status 0",
    command: boot("poweroff", "", "$L2_KERNEL"),
    check: (r) => assert.match(r.output, /vm ended: shutdown/),
  },
  {
    name: "elf-poweroff",
    title: "ELF vmlinux: `poweroff` ends the VM with status 0",
    command: boot("poweroff"),
    check: (r) => assert.match(r.output, /vm ended: shutdown/),
  },
  {
    name: "panic",
    title: "a guest panic with panic=-1 ends the VM with status 0",
    command: boot("panic"),
    check: (r) => assert.match(r.output, /vm ended: (reset|triple-fault)/),
  },
  ...[2, 4].map((cpus) => ({
    name: `cpus-${cpus}`,
    title: `-c ${cpus}: the guest brings up ${cpus} online CPUs`,
    // Four L2 vCPUs take all of L1's.
    alone: cpus === 4,
    command: boot("reboot", `-c ${cpus}`),
    check: (_r: ScenarioResult, agent: Map<string, string>) => {
      assert.equal(agent.get("cpus"), String(cpus));
      assert.equal(agent.get("cpus_online"), `0-${cpus - 1}`);
    },
  })),
  ...[256, 1024, 4096].map((mem) => ({
    name: `mem-${mem}`,
    title: `-m ${mem}: the guest sees the memory it was given`,
    command: boot("reboot", `-m ${mem}`),
    check: (_r: ScenarioResult, agent: Map<string, string>) => {
      // The kernel's memory map holds all of it but the legacy BIOS hole (640 KiB–1 MiB).
      const mapMiB = Number(agent.get("memory_kb")) / 1024;
      assert.ok(mapMiB > mem - 1 && mapMiB <= mem, `memory map ${mapMiB} MiB of ${mem}`);
      // MemTotal also excludes what the kernel reserves for itself: its image (~36 MiB
      // here) and per-page structures (64 bytes per 4 KiB page, ~1.6%), plus slack.
      const totalMiB = Number(agent.get("memtotal_kb")) / 1024;
      const reserved = mapMiB - totalMiB;
      assert.ok(reserved > 0 && reserved < 40 + mem / 24, `MemTotal ${totalMiB} MiB of ${mem}`);
    },
  })),
  {
    name: "params-rtc",
    title: "-p parameters reach /proc/cmdline and the guest's RTC matches the host's clock",
    // pci=nomsi (for the INTx test below) goes first, so the order checked here is unbroken.
    command: boot("reboot", '-p "pci=nomsi agent.run=rng,intx" -p first=1 -p second=2'),
    check: (r, agent) => {
      assert.match(agent.get("cmdline") ?? "", /first=1 second=2 quiet reboot=t/);
      const rtcLine = r.lines.find((l) => l.text.startsWith("rtc_epoch="));
      assert.ok(rtcLine, "the agent reported the RTC");
      const drift = Number(agent.get("rtc_epoch")) - rtcLine.epochMs / 1000;
      assert.ok(Math.abs(drift) < 5, `RTC is ${drift.toFixed(1)} s off the host clock`);
    },
  },
  {
    name: "params-rtc",
    title:
      "pci=nomsi: virtio-rng interrupts over INTx, routed by the DSDT's _PRT to an IOAPIC line",
    check: (_r, agent) => {
      assert.match(agent.get("rng_current") ?? "", /^virtio_rng/);
      assert.notEqual(agent.get("rng_a"), agent.get("rng_b"));
      assert.equal(agent.get("msi_vectors"), "0", "no MSI-X with pci=nomsi");
      const line = /virtio\d+:IO-APIC:\d+-fasteoi:(\d+)/.exec(agent.get("virtio_irqs") ?? "");
      assert.ok(line, `an IO-APIC line for virtio: ${agent.get("virtio_irqs")}`);
      assert.ok(Number(line[1]) > 0, "interrupts were delivered on it");
    },
  },
  {
    name: "stdin",
    title: "a line typed on the serial console reaches the guest and is answered",
    command: typeAfterAgentReport(boot("echo"), ["typed into the guest"]),
    check: (r) => assert.match(r.output, /echo=typed into the guest/),
  },
  ...BLOCK_TESTS,
  ...SANDBOX_TESTS,
  ...CONTROL_TESTS,
  ...NET_TESTS,
  ...VSOCK_TESTS,
];

/** The value of the last `key=value` line of a scenario's output (L1's lines and the guest's). */
function lineValue(r: ScenarioResult, key: string): string {
  const line = r.lines.findLast((l) => l.text.startsWith(`${key}=`));
  assert.ok(line, `no ${key}= line in:\n${r.output}`);
  return line.text.slice(key.length + 1);
}

/** The names of the syscalls a {@link loggedSyscalls} line lists. */
function syscallNames(r: ScenarioResult, key: string): string[] {
  return lineValue(r, key).trim().split(" ").filter(Boolean).map((nr) =>
    resolveSyscallNumber(Number(nr)) ?? nr
  );
}

/**
 * key=value lines between the agent's markers; with `cutShort`, from its first marker to the end
 * of the output (the VM ended inside the report).
 */
function agentReport(output: string, cutShort = false): Map<string, string> {
  const report = cutShort
    ? /@@AGENT BEGIN\n([\s\S]*)$/.exec(output)
    : /@@AGENT BEGIN\n([\s\S]*?)\n@@AGENT END/.exec(output);
  assert.ok(report, `no agent report in:\n${output}`);
  return new Map(
    report[1].split("\n").map((line) => {
      const at = line.indexOf("=");
      return [line.slice(0, at), line.slice(at + 1)] as [string, string];
    }),
  );
}

/** `TESTBED_ONLY=name,name`: run only these scenarios (and ignore the other tests). */
const ONLY = Deno.env.get("TESTBED_ONLY")?.split(",");
const selected = (t: LinuxTest) => (ONLY?.includes(t.name) ?? true) && !(AUDIT && t.ownPolicies);

const AUDIT_KEY = "audit_logged_syscalls";
/** The scenario's command; in the policy audit, run in a subshell and followed by its records. */
const audited = (command: string) =>
  AUDIT
    ? `dmesg -c >/dev/null\n(\n${command}\n)\nstatus=$?\n${loggedSyscalls(AUDIT_KEY)}\nexit $status`
    : command;

/**
 * The one bed every test shares. -m 4096 needs L1 to allow a 4 GiB SharedArrayBuffer: L1 gets
 * room to overcommit. -c 4 needs 4 L1 CPUs: with 2, L1's nested SVM once kept a vCPU thread in
 * KVM_RUN for 75 s (an L1 soft lockup) while the L2 kernel waited on it. One scenario at a time:
 * two at once (lanes: 2) took the bed's scenarios from 855 s to 680 s on our 2-CPU hosts, but L1's
 * nested SVM under TCG broke about once per 5 minutes that way (RCU stalls on IPIs, stack-guard
 * faults and panics in L1's kernel, an L2 kernel oops), against about once a run alone. L1 fails
 * now and then even so: up to four fresh L1s finish what was left.
 */
const bed = new Testbed({ memMiB: 6144, cpus: 4, lanes: 1, rebootsAfterWedge: 4 });
let results: Promise<Map<string, ScenarioResult>> | undefined;
/** Boots L1 once, on first use, with every scenario. */
function bedResults(): Promise<Map<string, ScenarioResult>> {
  const chosen = TESTS.filter(selected);
  const scenarios: Scenario[] = chosen.flatMap((t) =>
    t.command === undefined ? [] : [{
      name: t.name,
      command: audited(t.command),
      timeoutSeconds: t.timeoutSeconds ?? SCENARIO_TIMEOUT_SECONDS,
      needs: t.needs,
      alone: t.alone,
    }]
  );
  results ??= (async () => {
    if (chosen.some((t) => t.needsBundle)) await buildBundle(`${PROJECT_ROOT}/${BUNDLE}`);
    return await bed.boot(scenarios);
  })();
  return results;
}

for (const t of TESTS) {
  Deno.test({
    name: CAN_RUN ? `linux: ${t.title}` : `linux: ${t.title} [ignored: ${SKIP}]`,
    ignore: !CAN_RUN || !selected(t),
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const result = (await bedResults()).get(t.name);
      const wedged = bed.lastBoot?.wedgedIn;
      const why = wedged === undefined ? "" : ` (L1 stopped answering in scenario ${wedged})`;
      assert.ok(result, `scenario ${t.name} did not run${why}`);
      assert.notEqual(result.status, undefined, `scenario ${t.name} never ended${why}`);
      const seconds = (result.durationMs / 1000).toFixed(1);
      console.log(`  ${t.name}: status ${result.status} in ${seconds} s`);
      if (bed.rerun.includes(t.name)) {
        console.log(
          `  ${t.name}: the run above is its second: the first ran out of time with ` +
            "its guest's vCPU running (the report is in the bed's log)",
        );
      }
      assert.equal(result.status, 0, `status ${result.status}:\n${result.output}`);
      t.check(result, t.withoutAgent ? new Map() : agentReport(result.output, t.cutShort));
      if (AUDIT && t.command !== undefined) {
        assert.deepEqual(syscallNames(result, AUDIT_KEY), [], "syscalls outside the policies");
      }
    },
  });
}

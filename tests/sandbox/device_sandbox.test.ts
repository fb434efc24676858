/**
 * The device sandbox seen from outside, on this host's KVM with small test guests: every virtio
 * device runs in a jailed process of its own (namespaces, empty root, seccomp, only the
 * descriptors it was given), a policy that lacks a syscall kills the device and ends the VM with
 * a line naming the syscall and the policy, and nothing outlives the VM.
 */

import { commandName, descendantPids, processStatus } from "../helpers/proc.ts";
import assert from "node:assert/strict";
import { Vm, type VmConfig, type VmResult } from "../../mod.ts";
import { assertOneLineError, crosvm, spawnCrosvm } from "../helpers/cli_process.ts";
import { buildGuest } from "../helpers/guests.ts";
import { settledFdCount } from "../helpers/fds.ts";
import { kvmTest } from "../helpers/kvm.ts";
import { runGuest } from "../helpers/run_guest.ts";

const SHIPPED_POLICIES = new URL("../../seccomp/x86_64/", import.meta.url).pathname;
/** printk_ratelimit()'s interval (DEFAULT_RATELIMIT_INTERVAL, 5 * HZ, `<linux/ratelimit_types.h>`). */
const PRINTK_RATELIMIT_MS = 5000;
/** The first component of an absolute path: the directory a bind of it creates in the jail. */
const topDirectory = (path: string) => path.split("/")[1];
/**
 * What every jailed device's root may hold: the system libraries, /proc, /tmp, and the tops of
 * the Deno binary's and the module tree's paths (wherever this checkout and Deno are installed).
 */
const JAIL_ROOT = new Set([
  "lib64",
  "proc",
  "tmp",
  "usr",
  "lib",
  topDirectory(Deno.execPath()),
  topDirectory(new URL("../..", import.meta.url).pathname),
]);

/** The processes descended from `pid`, each with its command name. */
function descendants(pid: number): { pid: number; comm: string }[] {
  return descendantPids(pid).flatMap((child) => {
    const comm = commandName(child);
    return comm === undefined ? [] : [{ pid: child, comm }];
  });
}

/**
 * The jailed Deno processes among our descendants (bubblewrap's init runs them) that have loaded
 * their seccomp filter, i.e. are ready.
 */
function deviceProcesses(): number[] {
  return descendants(Deno.pid).filter((p) =>
    p.comm === "deno" && processStatus(p.pid).get("Seccomp") === "2"
  )
    .map((p) => p.pid);
}

/**
 * A VM of the spin guest with `config`, run while `during` inspects it; then stopped, unless it
 * ended by itself within `endsWithinMs`.
 */
async function whileSpinning(
  config: Partial<VmConfig>,
  during: (vm: Vm) => Promise<void>,
  endsWithinMs = 0,
): Promise<VmResult> {
  const vm = await Vm.create({
    kernel: await buildGuest("spin"),
    memMiB: 64,
    cpus: 1,
    params: [],
    serials: [{ num: 1, type: "stream", console: false, stdin: false }],
    disks: [],
    rng: true,
    logLevel: "warn",
    ...config,
  });
  const output = new Response(vm.serialOutput).text();
  const running = vm.run();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await vm.running;
    await during(vm);
  } finally {
    timer = setTimeout(() => vm.stop(), endsWithinMs);
  }
  const result = await running;
  clearTimeout(timer);
  await output;
  return result;
}

/** Polls `condition` every 20 ms for up to 5 s. */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A 1 MiB raw image, removed after `fn`. */
async function withImage<T>(fn: (image: string) => Promise<T>): Promise<T> {
  const image = await Deno.makeTempFile({ suffix: ".img" });
  try {
    await Deno.truncate(image, 1 << 20);
    return await fn(image);
  } finally {
    await Deno.remove(image);
  }
}

/** A copy of the shipped policies with `edit` applied to the file `name`, removed after `fn`. */
async function withPolicies<T>(
  name: string,
  edit: (text: string) => string,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    for (const entry of Deno.readDirSync(SHIPPED_POLICIES)) {
      const text = Deno.readTextFileSync(`${SHIPPED_POLICIES}${entry.name}`);
      Deno.writeTextFileSync(`${dir}/${entry.name}`, entry.name === name ? edit(text) : text);
    }
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** What each of a process's descriptors refers to. */
function descriptorTargets(pid: number): string[] {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].map((entry) =>
    Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`)
  );
}

kvmTest("with a disk and virtio-rng, each device runs in a jailed process of its own", async () => {
  await withImage(async (image) => {
    let seen = 0;
    const result = await whileSpinning({
      disks: [{
        path: image,
        readOnly: false,
        root: false,
        sparse: true,
        direct: false,
        blockSize: 512,
      }],
    }, async () => {
      await waitFor(() => deviceProcesses().length === 2);
      const processes = deviceProcesses();
      assert.equal(processes.length, 2, "one process per device");
      for (const pid of processes) {
        const s = processStatus(pid);
        assert.equal(s.get("Seccomp"), "2", "a seccomp filter is loaded");
        assert.equal(s.get("NoNewPrivs"), "1");
        assert.equal(s.get("CapEff"), "0000000000000000", "no capabilities");
        for (const ns of ["pid", "user", "mnt", "net", "ipc", "uts"]) {
          assert.notEqual(
            Deno.readLinkSync(`/proc/${pid}/ns/${ns}`),
            Deno.readLinkSync(`/proc/self/ns/${ns}`),
            `its own ${ns} namespace`,
          );
        }
        const root = [...Deno.readDirSync(`/proc/${pid}/root`)].map((e) => e.name);
        assert.ok(root.every((name) => JAIL_ROOT.has(name)), `a bare root: ${root}`);
        assert.throws(() => Deno.statSync(`/proc/${pid}/root/etc/passwd`), Deno.errors.NotFound);
        const interfaces = Deno.readTextFileSync(`/proc/${pid}/net/dev`).split("\n").slice(2)
          .filter(Boolean).map((line) => line.split(":")[0].trim());
        assert.deepEqual(interfaces, ["lo"], "no network but loopback");
        const targets = descriptorTargets(pid);
        const files = targets.filter((t) => t.startsWith("/") && !t.startsWith("/memfd:"));
        const holdsImage = files.includes(image);
        // Its files: /dev/null as stdin and stdout, our stderr, the image (the block device
        // only), and Deno's caches in the jail's own /tmp.
        const stderr = Deno.readLinkSync("/proc/self/fd/2");
        assert.ok(
          files.every((f) =>
            f === image || f === "/dev/null" || f === stderr || f.startsWith("/tmp/deno/")
          ),
          `only the image, /dev/null, our stderr and the jail's own /tmp: ${files}`,
        );
        assert.equal(Deno.readLinkSync(`/proc/${pid}/fd/0`), "/dev/null", "stdin is /dev/null");
        assert.ok(targets.some((t) => t.startsWith("/memfd:guest-ram")), "guest RAM's memfd");
        assert.ok(targets.some((t) => t.startsWith("/memfd:virtio-")), "its state's memfd");
        seen += holdsImage ? 1 : 0;
      }
    });
    assert.equal(seen, 1, "exactly one device process (the disk's) holds the image");
    assert.equal(result.reason, "stop");
  });
  assert.deepEqual(descendants(Deno.pid), [], "no process outlives the VM");
});

kvmTest("--disable-sandbox: the devices run in Workers, with no process of their own", async () => {
  const result = await whileSpinning({ sandbox: { enabled: false, logFailures: false } }, () => {
    assert.deepEqual(descendants(Deno.pid), [], "no process of ours");
    return Promise.resolve();
  });
  assert.equal(result.reason, "stop");
});

kvmTest("a device process that dies ends the VM at once, saying which and how", async () => {
  const result = await whileSpinning({}, () => {
    const [pid] = deviceProcesses();
    Deno.kill(pid, "SIGKILL");
    return Promise.resolve();
  }, 5000);
  assert.equal(result.reason, "error");
  assert.match(result.error ?? "", /^virtio-rng: device process \d+ was killed by SIGKILL$/);
  assert.deepEqual(descendants(Deno.pid), []);
});

kvmTest(
  "a policy without a syscall the device needs: its first request kills it, the VM ends with the syscall and policy",
  () =>
    withPolicies(
      "rng_device.policy",
      (text) => text.replace(/^getrandom:.*$/m, ""),
      async (dir) => {
        const guest = await buildGuest("virtio_rng");
        const run = () => crosvm(["run", "--seccomp-policy-dir", dir, guest]);
        let killed = await run();
        if (killed.stderr.includes("the kernel log does not say which here")) {
          // With no audit daemon, audit records reach the kernel log under printk's rate limit
          // (10 in 5 s, shared): a test just before that logged many can cost this one its record.
          await new Promise((resolve) => setTimeout(resolve, PRINTK_RATELIMIT_MS));
          killed = await run();
        }
        assert.equal(killed.code, 1, killed.stderr);
        assert.match(
          killed.stderr,
          new RegExp(
            `virtio-rng: device process \\d+ was killed by SIGSYS: seccomp denied syscall \\d+ ` +
              `\\(getrandom\\), which ${dir}/rng_device.policy does not allow`,
          ),
        );
        const logged = await crosvm([
          "run",
          "--seccomp-log-failures",
          "--seccomp-policy-dir",
          dir,
          guest,
        ]);
        assert.equal(logged.code, 0, logged.stderr);
        assert.match(
          logged.stdout,
          /OK/,
          "with --seccomp-log-failures the device serves the guest",
        );
      },
    ),
);

kvmTest(
  "a policy that kills the device before it is ready: the VM does not start, the line names the syscall",
  () =>
    withPolicies(
      "common_device.policy",
      // The device says `ready` with write(2): the first call it makes under its filter.
      (text) => text.replace(/^write: 1$/m, ""),
      async (dir) => {
        const run = await crosvm([
          "run",
          "--no-balloon",
          "--seccomp-policy-dir",
          dir,
          await buildGuest("hello"),
        ]);
        assertOneLineError(
          run,
          new RegExp(
            `^crosvm: error: virtio-rng: the jailed device process did not start \\(killed by ` +
              `SIGSYS: seccomp denied syscall 1 \\(write\\), which ${dir}/rng_device.policy ` +
              `does not allow\\); run with --disable-sandbox to run the devices unjailed$`,
          ),
        );
      },
    ),
);

kvmTest("the shipped policies serve the virtio-rng guest end to end", async () => {
  const run = await crosvm(["run", await buildGuest("virtio_rng")]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /OK/);
});

kvmTest("no descriptor or process outlives a VM with a jailed device", async () => {
  const jailed = () => runGuest("virtio_rng", { config: { rng: true } });
  await jailed(); // warm up: Deno opens its own descriptors lazily on first use
  const before = await settledFdCount();
  const { result, output } = await jailed();
  assert.equal(result.reason, "reset");
  assert.match(output, /OK/, "the jailed device served the guest");
  assert.equal(await settledFdCount(), before);
  assert.deepEqual(descendants(Deno.pid), []);
});

kvmTest("a missing, unreadable or malformed policy is one line before the VM starts", async () => {
  const guest = await buildGuest("hello");
  assertOneLineError(
    await crosvm(["run", "--seccomp-policy-dir", "/nonexistent/policies", guest]),
    /^crosvm: error: seccomp policy directory \/nonexistent\/policies does not exist$/,
  );
  await withPolicies("rng_device.policy", (text) => text, async (dir) => {
    Deno.removeSync(`${dir}/rng_device.policy`);
    assertOneLineError(
      await crosvm(["run", "--seccomp-policy-dir", dir, guest]),
      new RegExp(`cannot read seccomp policy ${dir}/rng_device.policy`),
    );
  });
  await withPolicies("rng_device.policy", (text) => `${text}\ngetrandom 1\n`, async (dir) => {
    assertOneLineError(
      await crosvm(["run", "--seccomp-policy-dir", dir, guest]),
      new RegExp(`${dir}/rng_device.policy:\\d+: `),
    );
  });
  await withPolicies(
    "rng_device.policy",
    (text) => `${text}\nno_such_syscall: 1\n`,
    async (dir) => {
      assertOneLineError(
        await crosvm(["run", "--seccomp-policy-dir", dir, guest]),
        new RegExp(`${dir}/rng_device.policy:\\d+: .*no_such_syscall`),
      );
    },
  );
});

/** Whether `pid` still runs (a zombie waiting for its reaper does not). */
function running(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

kvmTest("no device process survives a SIGKILL of the VMM", async () => {
  const vmm = spawnCrosvm(["run", await buildGuest("spin")], "null");
  try {
    const reader = vmm.stdout.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), "R");
    reader.releaseLock();
    let jailed: number[] = [];
    await waitFor(() => (jailed = descendants(vmm.pid).map((p) => p.pid)).length >= 3);
    assert.ok(jailed.length >= 3, "bubblewrap, its init and the device's Deno");
    vmm.kill("SIGKILL");
    await waitFor(() => !jailed.some(running));
    assert.deepEqual(jailed.filter(running), [], "every jailed process died with the VMM");
  } finally {
    await vmm.stdout.cancel();
    await vmm.stderr.cancel();
    await vmm.status;
  }
});

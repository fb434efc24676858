// `crosvm run` and the top-level command line: crosvm's defaults, every option spelling,
// serial port rules, help, and a one-line UsageError naming the culprit for every mistake.

import assert from "node:assert/strict";
import { defaultSerials, type SerialConfig, type VmConfig } from "../../src/config.ts";
import { ExitStatus, HelpRequested } from "../../src/cli/errors.ts";
import { parseMainArgs, TOP_USAGE } from "../../src/cli/main_args.ts";
import {
  MAX_CPUS,
  MAX_MEM_MIB,
  MIN_MEM_MIB,
  parseRunArgs,
  RUN_USAGE,
} from "../../src/cli/run_args.ts";
import { assertUsageError } from "../helpers/usage_error.ts";

/** `crosvm run KERNEL` with nothing else, by crosvm's defaults (src/crosvm/cmdline.rs). */
const CROSVM_DEFAULTS: VmConfig = {
  kernel: "vmlinux",
  memMiB: 256,
  cpus: 1,
  params: [],
  serials: [{ num: 1, type: "stdout", console: true, stdin: true }],
  disks: [],
  rng: true,
  balloon: { pageReporting: false },
  logLevel: "info",
  sandbox: { enabled: true, logFailures: false },
};

/** The config for `crosvm run ARGS... vmlinux`. */
const run = (...args: string[]): VmConfig => parseRunArgs([...args, "vmlinux"]);
/** The serial ports for `crosvm run --serial S... vmlinux`. */
const serials = (...specs: string[]): SerialConfig[] =>
  run(...specs.flatMap((spec) => ["--serial", spec])).serials;

// Defaults and option spellings.

Deno.test("crosvm run KERNEL gives crosvm's defaults", () => {
  const config = run();
  assert.deepEqual(config, CROSVM_DEFAULTS);
  assert.equal("initrd" in config, false);
  assert.deepEqual(config.serials, defaultSerials());
});

Deno.test("InvalidArgs is crosvm's exit status 35", () => {
  assert.equal(ExitStatus.invalidArgs, 35);
  assert.equal(ExitStatus.success, 0);
});

for (
  const args of [
    ["-m", "512"],
    ["--mem", "512"],
    ["--mem=512"],
    ["-m512"],
    ["-m", "size=512"],
    ["--mem", "size=0x200"],
  ]
) {
  Deno.test(`memory: ${args.join(" ")} is 512 MiB`, () => {
    assert.equal(run(...args).memMiB, 512);
  });
}

Deno.test("memory: the bounds are accepted", () => {
  assert.equal(run("-m", String(MIN_MEM_MIB)).memMiB, MIN_MEM_MIB);
  assert.equal(run("-m", String(MAX_MEM_MIB)).memMiB, MAX_MEM_MIB);
});

for (const args of [["-c", "4"], ["--cpus", "4"], ["--cpus=num-cores=4"], ["-c", "num-cores=4"]]) {
  Deno.test(`cpus: ${args.join(" ")} is 4 vCPUs`, () => {
    assert.equal(run(...args).cpus, 4);
  });
}

Deno.test("cpus: 1 and the maximum are accepted", () => {
  assert.equal(run("-c", "1").cpus, 1);
  assert.equal(run("-c", String(MAX_CPUS)).cpus, MAX_CPUS);
});

Deno.test("params: every -p/--params is kept whole, in order", () => {
  const config = run("-p", "console=ttyS0", "--params", "root=/dev/vda ro", "--params=init=/x");
  assert.deepEqual(config.params, ["console=ttyS0", "root=/dev/vda ro", "init=/x"]);
});

Deno.test("initrd: -i and --initrd", () => {
  assert.equal(run("-i", "/boot/initrd").initrd, "/boot/initrd");
  assert.equal(run("--initrd=/boot/initrd").initrd, "/boot/initrd");
});

Deno.test("the KERNEL may come before the options, or after --", () => {
  assert.deepEqual(parseRunArgs(["bzImage", "-c", "2"]), {
    ...CROSVM_DEFAULTS,
    kernel: "bzImage",
    cpus: 2,
  });
  assert.equal(parseRunArgs(["-c", "2", "--", "-odd-name"]).kernel, "-odd-name");
});

Deno.test("log level: run's --log-level, the inherited level, and its override", () => {
  assert.equal(run("--log-level", "debug").logLevel, "debug");
  assert.equal(parseRunArgs(["vmlinux"], "warn").logLevel, "warn");
  assert.equal(parseRunArgs(["--log-level=trace", "vmlinux"], "warn").logLevel, "trace");
});

Deno.test("every option together", () => {
  const config = run(
    ...["-m", "1024", "-c", "2", "-p", "a", "-i", "/i", "--log-level", "off"],
    ...["--serial", "type=file,path=/tmp/s,num=2,console,stdin"],
    ...["--rwroot", "/r.img", "--no-rng", "--balloon-page-reporting"],
    ...["--disable-sandbox", "--seccomp-policy-dir", "/p", "--seccomp-log-failures"],
  );
  assert.deepEqual(config, {
    kernel: "vmlinux",
    memMiB: 1024,
    cpus: 2,
    params: ["a"],
    initrd: "/i",
    serials: [{ num: 2, type: "file", path: "/tmp/s", console: true, stdin: true }],
    disks: [{
      path: "/r.img",
      readOnly: false,
      root: true,
      sparse: true,
      direct: false,
      blockSize: 512,
    }],
    rng: false,
    balloon: { pageReporting: true },
    logLevel: "off",
    sandbox: { enabled: false, policyDir: "/p", logFailures: true },
  });
});

Deno.test("sandbox: on by default; --disable-sandbox, a policy dir, logged failures", () => {
  assert.deepEqual(run().sandbox, { enabled: true, logFailures: false });
  assert.deepEqual(run("--disable-sandbox").sandbox, { enabled: false, logFailures: false });
  assert.deepEqual(run("--seccomp-policy-dir=/etc/p").sandbox, {
    enabled: true,
    policyDir: "/etc/p",
    logFailures: false,
  });
  assert.deepEqual(run("--seccomp-log-failures").sandbox, { enabled: true, logFailures: true });
  assert.throws(
    () => run("--seccomp-policy-dir="),
    /--seccomp-policy-dir value "": the path is empty/,
  );
});

// Serial ports.

Deno.test("serial: a file console on COM2 replaces the default COM1 console", () => {
  assert.deepEqual(serials("type=file,path=/tmp/x,num=2,console"), [
    { num: 2, type: "file", path: "/tmp/x", console: true, stdin: false },
  ]);
});

Deno.test("serial: without a console, COM1 is added as the stdout console with stdin", () => {
  assert.deepEqual(serials("type=sink,num=3"), [
    { num: 1, type: "stdout", console: true, stdin: true },
    { num: 3, type: "sink", console: false, stdin: false },
  ]);
});

Deno.test("serial: the added COM1 console leaves stdin to the port that has it", () => {
  assert.deepEqual(serials("type=stdout,num=2,stdin"), [
    { num: 1, type: "stdout", console: true, stdin: false },
    { num: 2, type: "stdout", console: false, stdin: true },
  ]);
});

Deno.test("serial: a configured COM1 without console is kept as given (no console)", () => {
  assert.deepEqual(serials("type=sink"), [{ num: 1, type: "sink", console: false, stdin: false }]);
});

Deno.test("serial: type defaults to sink, num to 1, and type may go unnamed", () => {
  assert.deepEqual(serials("console"), [{ num: 1, type: "sink", console: true, stdin: false }]);
  assert.deepEqual(serials("stdout,num=4,console"), [
    { num: 4, type: "stdout", console: true, stdin: false },
  ]);
});

Deno.test("serial: ports come out in port order, with true/false spellings", () => {
  const ports = serials("num=3,type=sink", "num=2,type=stdout,console=true,stdin=false");
  assert.deepEqual(ports.map((port) => [port.num, port.console, port.stdin]), [
    [2, true, false],
    [3, false, false],
  ]);
});

Deno.test("serial: a quoted path may contain commas", () => {
  assert.equal(serials('type=file,path="/tmp/a,b",console')[0].path, "/tmp/a,b");
});

// Help.

for (const flag of ["-h", "--help"]) {
  Deno.test(`run ${flag} asks for RUN_USAGE`, () => {
    assert.throws(() => parseRunArgs(["-m", "512", flag]), (error: unknown) => {
      assert.ok(error instanceof HelpRequested);
      assert.equal(error.text, RUN_USAGE);
      return true;
    });
  });
}

Deno.test("RUN_USAGE lists every option with crosvm's defaults", () => {
  for (
    const option of [
      ...["-m, --mem", "-c, --cpus", "-p, --params", "-i, --initrd", "--serial", "-b, --block"],
      ...["-r, --root", "--rwroot", "-d, --disk", "--rwdisk", "--no-rng"],
    ]
  ) {
    assert.ok(RUN_USAGE.includes(option), option);
  }
  for (const text of ["--log-level", "-h, --help", "KERNEL", "(default: 256)", "(default: 1)"]) {
    assert.ok(RUN_USAGE.includes(text), text);
  }
  assert.ok(RUN_USAGE.includes("(default: info)"));
  assert.ok(RUN_USAGE.includes("(default: type=stdout,num=1,console,stdin)"));
});

// Errors: each names the bad option or value.

const RUN_ERRORS: [string, string[], string[]][] = [
  ["missing KERNEL", ["-m", "512"], ["missing KERNEL"]],
  ["an empty KERNEL", [""], ["KERNEL", "empty"]],
  ["two KERNELs", ["a", "b"], ['unexpected argument "b"']],
  ["an unknown long option", ["--bogus", "k"], ["unknown option --bogus"]],
  ["an unknown short option", ["-x", "k"], ["unknown option -x"]],
  ["a prototype name as an option", ["--constructor", "k"], ["unknown option --constructor"]],
  ["a missing value", ["k", "--mem"], ["--mem", "needs a value"]],
  ["a repeated --mem", ["-m", "512", "--mem", "1024", "k"], ["--mem", "more than once"]],
  ["a repeated --initrd", ["-i", "a", "-i", "b", "k"], ["-i", "more than once"]],
  ["mem 0", ["-m", "0", "k"], ["-m", '"0"', `${MIN_MEM_MIB} to ${MAX_MEM_MIB}`]],
  ["negative mem", ["-m", "-512", "k"], ["-m", "-512"]],
  ["fractional mem", ["--mem", "1.5", "k"], ["--mem", "1.5", "integer"]],
  ["mem words", ["--mem", "lots", "k"], ["--mem", "lots", "integer"]],
  ["mem below the minimum", ["-m", String(MIN_MEM_MIB - 1), "k"], ["-m", `"${MIN_MEM_MIB - 1}"`]],
  ["mem above the maximum", ["-m", String(MAX_MEM_MIB + 1), "k"], ["-m", String(MAX_MEM_MIB)]],
  ["absurd mem", ["-m", "9".repeat(30), "k"], ["-m", "9".repeat(30)]],
  ["mem size without a value", ["-m", "size", "k"], ["-m", "size needs a value"]],
  ["an empty mem", ["-m", "", "k"], ["-m", "empty"]],
  ["an unknown mem key", ["-m", "size=512,hugepages", "k"], ["-m", '"hugepages"']],
  ["cpus 0", ["-c", "0", "k"], ["-c", "num-cores", "1 to 255"]],
  ["cpus above the maximum", ["--cpus", "256", "k"], ["--cpus", "256"]],
  ["cpus not an integer", ["-c", "two", "k"], ["-c", "two"]],
  ["an unsupported cpus key", ["-c", "boot-cpu=0", "k"], ["-c", '"boot-cpu"']],
  ["an unknown log level", ["--log-level", "loud", "k"], ["--log-level", "loud", "trace"]],
  ["an empty initrd", ["--initrd=", "k"], ["--initrd", "empty"]],
  ["type=file without a path", ["--serial", "type=file", "k"], ["--serial", "path"]],
  ["a path on stdout", ["--serial", "type=stdout,path=/x", "k"], ["--serial", "type=file"]],
  ["an empty serial path", ["--serial", 'type=file,path=""', "k"], ["--serial", "empty"]],
  ["an unsupported serial type", ["--serial", "type=syslog", "k"], ["--serial", '"syslog"']],
  ["serial num 0", ["--serial", "num=0", "k"], ["--serial", "num", "1 to 4"]],
  ["serial num 5", ["--serial", "num=5", "k"], ["--serial", "num", "5"]],
  ["an unknown serial key", ["--serial", "hardware=serial", "k"], ["--serial", '"hardware"']],
  ["a bad serial flag", ["--serial", "console=maybe", "k"], ["--serial", "console", "maybe"]],
  ["a value for --no-rng", ["--no-rng=yes", "k"], ["--no-rng", "takes no value"]],
];

for (const [what, args, parts] of RUN_ERRORS) {
  Deno.test(`run refuses ${what}`, () => {
    assertUsageError(() => parseRunArgs(args), ...parts);
  });
}

const SERIAL_CLASHES: [string, string[], string[]][] = [
  ["a duplicate num", ["num=2,type=sink", "type=stdout,num=2"], ["num=2 is already"]],
  ["two consoles", ["num=1,console", "num=2,console"], ["console is already on num=1"]],
  ["two stdins", ["num=3,stdin", "num=2,stdin"], ["stdin is already on num=3"]],
];

for (const [what, specs, parts] of SERIAL_CLASHES) {
  Deno.test(`serial: refuses ${what}, naming the second --serial`, () => {
    assertUsageError(() => serials(...specs), "--serial", JSON.stringify(specs[1]), ...parts);
  });
}

// The top level: crosvm [--log-level L] <command> [args].

Deno.test("main: run returns its config", () => {
  assert.deepEqual(parseMainArgs(["run", "vmlinux"]), {
    command: "run",
    config: CROSVM_DEFAULTS,
    extendedStatus: false,
    warnings: [],
  });
});

Deno.test("main: the global --log-level reaches run, and run's own overrides it", () => {
  const global = parseMainArgs(["--log-level", "debug", "run", "-c", "2", "vmlinux"]);
  assert.deepEqual(global, {
    command: "run",
    config: { ...CROSVM_DEFAULTS, cpus: 2, logLevel: "debug" },
    extendedStatus: false,
    warnings: [],
  });
  const both = parseMainArgs(["--log-level=debug", "run", "--log-level", "error", "vmlinux"]);
  assert.equal(both.command === "run" && both.config.logLevel, "error");
});

Deno.test("main: version", () => {
  assert.deepEqual(parseMainArgs(["version"]), { command: "version" });
});

Deno.test("main: help, --help and -h give TOP_USAGE, which lists the commands", () => {
  for (const args of [["help"], ["--help"], ["-h"], ["--log-level", "info", "-h"]]) {
    assert.deepEqual(parseMainArgs(args), { command: "help", text: TOP_USAGE });
  }
  for (const command of ["help", "run", "version", "--log-level"]) {
    assert.ok(TOP_USAGE.includes(command), command);
  }
});

Deno.test("main: help run and run --help give RUN_USAGE", () => {
  assert.deepEqual(parseMainArgs(["help", "run"]), { command: "help", text: RUN_USAGE });
  assert.deepEqual(parseMainArgs(["run", "--help"]), { command: "help", text: RUN_USAGE });
});

Deno.test("main: version --help gives the version command's own help", () => {
  const help = parseMainArgs(["version", "--help"]);
  assert.equal(help.command, "help");
  assert.ok(help.command === "help" && help.text.startsWith("Usage: crosvm version"));
});

const MAIN_ERRORS: [string, string[], string[]][] = [
  ["no command", [], ["missing command"]],
  ["an unknown command", ["launch"], ['unknown command "launch"', "run"]],
  ["a prototype name as a command", ["toString"], ['unknown command "toString"']],
  ["help for an unknown command", ["help", "launch"], ['unknown command "launch"']],
  ["an unknown global option", ["--verbose", "run", "k"], ["unknown option --verbose"]],
  ["a bad global log level", ["--log-level", "loud", "run", "k"], ["--log-level", "loud"]],
  ["arguments to version", ["version", "now"], ['unexpected argument "now"']],
  ["run's errors", ["run", "-m", "0", "k"], ["-m", '"0"']],
];

for (const [what, args, parts] of MAIN_ERRORS) {
  Deno.test(`main: refuses ${what}`, () => {
    assertUsageError(() => parseMainArgs(args), ...parts);
  });
}

Deno.test("main: run -s/--socket and --extended-status are the command's, not the VM's", () => {
  for (const flag of ["-s", "--socket"]) {
    assert.deepEqual(parseMainArgs(["run", flag, "/run/vm.sock", "--extended-status", "vmlinux"]), {
      command: "run",
      config: CROSVM_DEFAULTS,
      socket: "/run/vm.sock",
      extendedStatus: true,
      warnings: [],
    });
  }
  assertUsageError(() => parseMainArgs(["run", "-s", "", "vmlinux"]), "-s", "the path is empty");
});

Deno.test("run: a balloon by default, --balloon-page-reporting, --no-balloon", () => {
  assert.deepEqual(run().balloon, { pageReporting: false });
  assert.deepEqual(run("--balloon-page-reporting").balloon, { pageReporting: true });
  assert.equal(run("--no-balloon").balloon, undefined);
  assertUsageError(
    () => run("--no-balloon", "--balloon-page-reporting"),
    "--balloon-page-reporting needs a balloon",
  );
});

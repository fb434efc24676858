/**
 * `crosvm run [OPTIONS] KERNEL`: its options, spelled and defaulted as crosvm's
 * `RunCommand` (src/crosvm/cmdline.rs), turned into a {@link VmConfig}.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import { MEM_32BIT_GAP_SIZE, MIB } from "../arch/x86_64/layout.ts";
import {
  COM_PORT_COUNT,
  DEFAULT_CPUS,
  DEFAULT_KVM_DEVICE,
  DEFAULT_MEM_MIB,
  defaultSerials,
  type NetConfig,
  type SerialConfig,
  type SerialType,
  type VmConfig,
} from "../config.ts";
import { isLogLevel, LOG_LEVELS, type LogLevel } from "../log.ts";
import { DISK_OPTIONS, DISK_USAGE, parseDisks } from "./disk_args.ts";
import { fitQueuePairs, NET_OPTIONS, NET_USAGE, parseNets } from "./net_args.ts";
import { parseVsock, VSOCK_OPTIONS, VSOCK_USAGE } from "./vsock_args.ts";
import { invalidValue, UsageError } from "./errors.ts";
import { parseSandbox, SANDBOX_OPTIONS, SANDBOX_USAGE } from "./sandbox_args.ts";
import { type OptionValue, scanArgs } from "./scan_args.ts";
import { type IntegerRange, type KeySchema, parseKeyValues } from "./key_values.ts";

/** crosvm's default `--log-level` (`CrosvmCmdlineArgs` in src/crosvm/cmdline.rs). */
export const DEFAULT_LOG_LEVEL: LogLevel = "info";

/**
 * Smallest `--mem` accepted, in MiB: x86_64 Linux is linked to load at 16 MiB
 * (`CONFIG_PHYSICAL_START`, arch/x86/Kconfig), so a guest needs RAM past that for its image.
 * Whether a given kernel and initrd fit is the loader's check.
 */
export const MIN_MEM_MIB = 32;
/** x86_64's architectural limit on physical address width (Intel SDM vol. 3A, 4.1.4). */
const X86_64_MAX_PHYS_ADDR_BITS = 52;
/**
 * Largest `--mem` accepted, in MiB: RAM above the 32-bit MMIO hole resumes at 4 GiB, so
 * the top of RAM is `mem + hole`, which must stay below 2^52. What the host can really
 * back is found when the memory is allocated.
 */
export const MAX_MEM_MIB = (2 ** X86_64_MAX_PHYS_ADDR_BITS - MEM_32BIT_GAP_SIZE) / MIB;
/**
 * Largest `--cpus` accepted: xAPIC IDs are 8 bits and 0xFF is the broadcast ID (Intel SDM
 * vol. 3A, 10.6.2.1). KVM's own limit (`KVM_CAP_MAX_VCPUS`) is checked when the VM is built.
 */
export const MAX_CPUS = 255;

/** `--serial num=` bounds: COM1–COM4 (crosvm's `validate_serial_parameters`). */
const SERIAL_NUM_RANGE: IntegerRange = { min: 1, max: COM_PORT_COUNT };
/** crosvm's default serial `num` (`serial_parameters_default_num`, devices/src/serial_device.rs). */
const DEFAULT_SERIAL_NUM = 1;
/** crosvm's default serial `type` (`SerialType::default`, devices/src/serial_device.rs). */
const DEFAULT_SERIAL_TYPE: CliSerialType = "sink";

/** A numeric option given as `N` or as key-values whose first key holds `N`. */
interface NumberOption {
  /** The keys accepted; the first holds the number. */
  readonly keys: KeySchema;
  /** The bounds of the number. */
  readonly range: IntegerRange;
  /** The number when the option or its key is not given. */
  readonly fallback: number;
}

/** `--mem`: crosvm's `MemOptions`; `-m 512` means `size=512`. */
const MEM_OPTION: NumberOption = {
  keys: ["size"],
  range: { min: MIN_MEM_MIB, max: MAX_MEM_MIB, unit: "MiB" },
  fallback: DEFAULT_MEM_MIB,
};
/** `--cpus`: the part of crosvm's `CpuOptions` we support; `-c 2` means `num-cores=2`. */
const CPUS_OPTION: NumberOption = {
  keys: ["num-cores"],
  range: { min: 1, max: MAX_CPUS },
  fallback: DEFAULT_CPUS,
};
/** `--serial` keys we support of crosvm's `SerialParameters`; `type` may go unnamed. */
const SERIAL_KEYS: KeySchema = ["type", "num", "path", "console", "stdin"];
/** The serial types the command line offers (`stream` is for library callers only). */
const CLI_SERIAL_TYPES = ["stdout", "file", "sink"] as const satisfies readonly SerialType[];
/** One of {@link CLI_SERIAL_TYPES}. */
type CliSerialType = typeof CLI_SERIAL_TYPES[number];
/** The roles only one serial port may have. */
const EXCLUSIVE_SERIAL_ROLES = ["console", "stdin"] as const;

/** `crosvm run`'s options, for `parseArgs`. */
const RUN_OPTIONS: ParseArgsOptionsConfig = {
  mem: { type: "string", short: "m" },
  cpus: { type: "string", short: "c" },
  params: { type: "string", short: "p", multiple: true },
  initrd: { type: "string", short: "i" },
  serial: { type: "string", multiple: true },
  "log-level": { type: "string" },
  "kvm-device": { type: "string" },
  ...DISK_OPTIONS,
  ...NET_OPTIONS,
  ...VSOCK_OPTIONS,
  "no-rng": { type: "boolean" },
  "no-balloon": { type: "boolean" },
  "balloon-page-reporting": { type: "boolean" },
  ...SANDBOX_OPTIONS,
  socket: { type: "string", short: "s" },
  "extended-status": { type: "boolean" },
};

/** Help text for `crosvm run`, with every option and its default. */
export const RUN_USAGE = `Usage: crosvm run [OPTIONS] KERNEL

Start a new VM and run it until the guest stops.

Positional Arguments:
  KERNEL            the kernel to boot: an ELF vmlinux or a bzImage

Options:
  -m, --mem <N|size=N>
                    guest memory in MiB, ${MIN_MEM_MIB} to ${MAX_MEM_MIB}
                    (default: ${DEFAULT_MEM_MIB})
  -c, --cpus <N|num-cores=N>
                    number of vCPUs, 1 to ${MAX_CPUS} (default: ${DEFAULT_CPUS})
  -p, --params <PARAMS>
                    extra kernel command-line parameters; may be given more
                    than once, appended in order (default: none)
  -i, --initrd <PATH>
                    initial ramdisk to load (default: none)
  --serial <type=TYPE,num=N,path=PATH,console,stdin>
                    set up one serial port; may be given more than once
                      type=(${CLI_SERIAL_TYPES.join(",")}) - where its output goes
                        (default: ${DEFAULT_SERIAL_TYPE})
                      num=(1..${COM_PORT_COUNT}) - the COM port (default: ${DEFAULT_SERIAL_NUM})
                      path=PATH - the output file, required for type=file
                      console - the guest kernel's console is on this port
                      stdin - this port reads standard input
                    at most one port may be console and one stdin; unless a
                    port is the console or COM1 is given, COM1 is added as
                    type=stdout,console (and stdin if no port has it);
                    ports not given are sinks
                    (default: type=stdout,num=1,console,stdin)
${DISK_USAGE}
${NET_USAGE}
${VSOCK_USAGE}
  --no-rng          no virtio-rng device (default: one, fed by the host's
                    CSPRNG)
  --no-balloon      no virtio-balloon device (default: one, which crosvm
                    balloon sets the size of)
  --balloon-page-reporting
                    the guest reports its free pages to the balloon, which
                    gives them back to the host (default: off)
${SANDBOX_USAGE}
  --kvm-device <PATH>
                    the KVM device to use (default: ${DEFAULT_KVM_DEVICE})
  -s, --socket <PATH>
                    listen for control requests (crosvm stop, suspend,
                    resume, powerbtn, balloon, balloon_stats, disk resize)
                    on a socket at PATH, or at PATH/crosvm-<pid>.sock when
                    PATH is a directory; mode 0600, removed at the end
                    (default: no control socket)
  --extended-status exit with the VM's outcome: 32 after a guest reset, 33
                    after a crash, 34 after a guest panic (default: 0 for
                    any end without an error)
  --log-level <LEVEL>
                    one of ${LOG_LEVELS.join(", ")}; overrides the
                    --log-level given before "run" (default: ${DEFAULT_LOG_LEVEL})
  -h, --help        print this help and exit`;

/** The value of a `--log-level` option, which must name one of {@link LOG_LEVELS}. */
export function parseLogLevel({ flag, value }: OptionValue): LogLevel {
  if (isLogLevel(value)) return value;
  throw invalidValue(flag, value, `expected one of ${LOG_LEVELS.join(", ")}`);
}

/** What `crosvm run` asks for: the VM, and how the command around it behaves. */
export interface RunArgs {
  /** The VM to run. */
  readonly config: VmConfig;
  /** `-s/--socket`: the control socket's path, if any. */
  readonly socket?: string;
  /** `--extended-status`: exit with the VM's outcome. */
  readonly extendedStatus: boolean;
  /** What to warn of before running (older spellings used). */
  readonly warnings: readonly string[];
}

/**
 * Parses the arguments after `crosvm run` into a {@link VmConfig} with crosvm's defaults.
 * `logLevel` is the level from crosvm's own `--log-level`, which `run --log-level` overrides.
 * Throws {@link UsageError} for any bad argument, {@link HelpRequested} with
 * {@link RUN_USAGE} for `-h`/`--help`.
 */
export function parseRunArgs(
  argv: readonly string[],
  logLevel: LogLevel = DEFAULT_LOG_LEVEL,
): VmConfig {
  return parseRunCommand(argv, logLevel).config;
}

/** {@link parseRunArgs}, with the options that are the command's rather than the VM's. */
export function parseRunCommand(
  argv: readonly string[],
  logLevel: LogLevel = DEFAULT_LOG_LEVEL,
): RunArgs {
  const { options, positionals } = scanArgs(argv, RUN_OPTIONS, {
    usage: RUN_USAGE,
    maxPositionals: 1,
  });
  const single = (name: string): OptionValue | undefined => options.get(name)?.[0];
  const { nets, warnings } = parseNets(options);
  const vsock = parseVsock(options);
  warnings.push(...vsock.warnings);
  const initrd = single("initrd");
  const level = single("log-level");
  const kvmDevice = single("kvm-device");
  const config: VmConfig = {
    kernel: kernelPath(positionals),
    memMiB: numberOption(single("mem"), MEM_OPTION),
    cpus: numberOption(single("cpus"), CPUS_OPTION),
    params: (options.get("params") ?? []).map((param) => param.value),
    serials: parseSerials(options.get("serial") ?? []),
    disks: parseDisks(options),
    ...netsOption(nets),
    ...(vsock.vsock === undefined ? {} : { vsock: vsock.vsock }),
    rng: !options.has("no-rng"),
    ...balloonOption(options.has("no-balloon"), single("balloon-page-reporting")),
    sandbox: parseSandbox(options),
    logLevel: level === undefined ? logLevel : parseLogLevel(level),
  };
  if (initrd !== undefined) config.initrd = nonEmptyPath(initrd);
  if (kvmDevice !== undefined) config.kvmDevice = nonEmptyPath(kvmDevice);
  const socket = single("socket");
  const extendedStatus = options.has("extended-status");
  warnings.push(...fitQueuePairs(nets, config.cpus));
  return socket === undefined
    ? { config, extendedStatus, warnings }
    : { config, socket: nonEmptyPath(socket), extendedStatus, warnings };
}

/** The NICs, when there are any (a config without NICs leaves the field out). */
function netsOption(nets: NetConfig[]): Partial<VmConfig> {
  return nets.length === 0 ? {} : { nets };
}

/** The balloon the options ask for: crosvm's default one, or none with `--no-balloon`. */
function balloonOption(none: boolean, reporting: OptionValue | undefined): Partial<VmConfig> {
  if (!none) return { balloon: { pageReporting: reporting !== undefined } };
  if (reporting !== undefined) {
    throw new UsageError(`${reporting.flag} needs a balloon, and --no-balloon removes it`);
  }
  return {};
}

/** The one KERNEL argument. */
function kernelPath(positionals: readonly string[]): string {
  const [kernel] = positionals;
  if (kernel === undefined) throw new UsageError("missing KERNEL: crosvm run [OPTIONS] KERNEL");
  if (kernel === "") throw new UsageError("the KERNEL path is empty");
  return kernel;
}

/** A path option's value, which may not be empty. */
function nonEmptyPath({ flag, value }: OptionValue): string {
  if (value === "") throw invalidValue(flag, value, "the path is empty");
  return value;
}

/** The value of a `-m`/`-c` style option, or its fallback when not given. */
function numberOption(option: OptionValue | undefined, spec: NumberOption): number {
  if (option === undefined) return spec.fallback;
  const values = parseKeyValues(option.flag, option.value, spec.keys);
  return values.integer(spec.keys[0], spec.range) ?? spec.fallback;
}

/**
 * The serial ports from every `--serial`, in port order, with crosvm's default console
 * (`set_default_serial_parameters`, arch/src/serial.rs): unless some port is the console
 * or COM1 was configured, COM1 is added on stdout as the console. crosvm also gives that
 * COM1 stdin unconditionally; here it gets stdin only if no other port has it, so that at
 * most one port reads stdin. With no `--serial` this is exactly {@link defaultSerials}.
 */
function parseSerials(options: readonly OptionValue[]): SerialConfig[] {
  const serials: SerialConfig[] = [];
  for (const option of options) {
    const serial = parseSerial(option);
    const clash = serials.find((other) => other.num === serial.num);
    if (clash !== undefined) {
      throw invalidValue(option.flag, option.value, `num=${serial.num} is already configured`);
    }
    for (const role of EXCLUSIVE_SERIAL_ROLES) {
      const holder = serials.find((other) => other[role]);
      if (serial[role] && holder !== undefined) {
        throw invalidValue(option.flag, option.value, `${role} is already on num=${holder.num}`);
      }
    }
    serials.push(serial);
  }
  if (!serials.some((serial) => serial.console || serial.num === DEFAULT_SERIAL_NUM)) {
    const [com1] = defaultSerials();
    serials.push({ ...com1, stdin: com1.stdin && !serials.some((serial) => serial.stdin) });
  }
  return serials.sort((a, b) => a.num - b.num);
}

/** One `--serial type=TYPE,num=N,path=PATH,console,stdin`. */
function parseSerial({ flag, value }: OptionValue): SerialConfig {
  const values = parseKeyValues(flag, value, SERIAL_KEYS);
  const type = values.choice("type", CLI_SERIAL_TYPES) ?? DEFAULT_SERIAL_TYPE;
  const path = values.string("path");
  if (type === "file" && path === undefined) throw values.error("type=file needs path=PATH");
  if (type !== "file" && path !== undefined) throw values.error(`path is only for type=file`);
  if (path === "") throw values.error("the path is empty");
  const serial: SerialConfig = {
    num: values.integer("num", SERIAL_NUM_RANGE) ?? DEFAULT_SERIAL_NUM,
    type,
    console: values.flag("console"),
    stdin: values.flag("stdin"),
  };
  if (path !== undefined) serial.path = path;
  return serial;
}

/**
 * crosvm's sandbox options of `crosvm run`: `--disable-sandbox`, `--seccomp-policy-dir DIR` and
 * `--seccomp-log-failures`, into a {@link SandboxConfig}.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import type { SandboxConfig } from "../config.ts";
import { invalidValue } from "./errors.ts";
import type { OptionValue } from "./scan_args.ts";

/** The sandbox options, for `parseArgs`. */
export const SANDBOX_OPTIONS: ParseArgsOptionsConfig = {
  "disable-sandbox": { type: "boolean" },
  "seccomp-policy-dir": { type: "string" },
  "seccomp-log-failures": { type: "boolean" },
};

/** Their lines of `crosvm run --help`. */
export const SANDBOX_USAGE =
  `  --disable-sandbox run every virtio device in a Worker of the VMM instead of
                    a jailed process of its own (default: each device in
                    its own namespaces, empty root and seccomp filter)
  --seccomp-policy-dir <DIR>
                    read the devices' seccomp policies from DIR
                    (default: the shipped seccomp/x86_64/)
  --seccomp-log-failures
                    log seccomp violations instead of killing the device`;

/** The sandbox the options ask for (crosvm's default: on, shipped policies, kill). */
export function parseSandbox(options: ReadonlyMap<string, readonly OptionValue[]>): SandboxConfig {
  const config: SandboxConfig = {
    enabled: !options.has("disable-sandbox"),
    logFailures: options.has("seccomp-log-failures"),
  };
  const dir = options.get("seccomp-policy-dir")?.[0];
  if (dir !== undefined) {
    if (dir.value === "") throw invalidValue(dir.flag, dir.value, "the path is empty");
    config.policyDir = dir.value;
  }
  return config;
}

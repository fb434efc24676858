/**
 * Everything the device sandbox needs, checked before the VM is built: bubblewrap, user
 * namespaces, libseccomp, and a readable, well-formed seccomp policy for each device type the VM
 * has. Each missing piece is one line saying what is missing and that `--disable-sandbox` runs
 * the devices unjailed.
 *
 * @module
 */

import type { VirtioDeviceRequest } from "../arch/machine.ts";
import { defaultSandbox, type SandboxConfig } from "../config.ts";
import type { DeviceSandbox } from "../devices/manager.ts";
import { policyFileName } from "../devices/virtio/kinds.ts";
import { UserError } from "../errors.ts";
import { checkUserNamespaces, findBubblewrap } from "../sandbox/jail.ts";
import { encodeMessage, MAX_MESSAGE_BYTES } from "../sandbox/messages.ts";
import { parsePolicy, parsePolicyFile, type SeccompPolicy } from "../sandbox/policy.ts";
import { checkSeccompPolicy } from "../sandbox/seccomp.ts";
import { SHIPPED_POLICIES } from "../sandbox/shipped_policies.ts";
import { BUNDLED } from "../program.ts";

/** A policy's share of a device's start-up message; the rest is the device's own description. */
const MAX_POLICY_BYTES = MAX_MESSAGE_BYTES / 2;

/**
 * Where the policies shipped with the VMM (one per device type, in crosvm's layout) are in the
 * source tree; the VMM reads its own copies ({@link SHIPPED_POLICIES}), and names them by these
 * paths (by the tree's relative path when bundled).
 */
const SHIPPED_POLICY_DIR = BUNDLED
  ? "seccomp/x86_64/"
  : decodeURIComponent(new URL("../../seccomp/x86_64/", import.meta.url).pathname);

/**
 * The sandbox for `devices`, or null when `config` turns it off.
 * @throws UserError when the host cannot jail devices or a policy is missing or malformed
 */
export function prepareSandbox(
  config: SandboxConfig | undefined,
  devices: readonly VirtioDeviceRequest[],
): DeviceSandbox | null {
  const sandbox = config ?? defaultSandbox();
  if (!sandbox.enabled || devices.length === 0) return null;
  findBubblewrap();
  checkUserNamespaces();
  const dir = sandbox.policyDir;
  if (dir !== undefined) checkPolicyDir(dir);
  const policies = new Map<string, { file: string; policy: SeccompPolicy }>();
  for (const { backend } of devices) {
    const name = policyFileName(backend);
    if (policies.has(name)) continue;
    const file = dir === undefined
      ? SHIPPED_POLICY_DIR + name
      : `${dir.replace(/\/+$/, "")}/${name}`;
    const policy = dir === undefined ? parseShippedPolicy(file, name) : parsePolicyFile(file);
    checkSeccompPolicy(policy, { logFailures: sandbox.logFailures });
    const bytes = encodeMessage(policy).length;
    if (bytes > MAX_POLICY_BYTES) {
      throw new UserError(
        `seccomp policy ${file} has too many rules (${bytes} bytes compiled, at most ${MAX_POLICY_BYTES})`,
      );
    }
    policies.set(name, { file, policy });
  }
  return {
    logFailures: sandbox.logFailures,
    policyFor: (backend) => {
      const found = policies.get(policyFileName(backend));
      if (found === undefined) throw new Error(`no policy was read for ${backend.kind}`);
      return found;
    },
  };
}

/** Parses the shipped policy `name`, named `file`; its includes are shipped policies too. */
function parseShippedPolicy(file: string, name: string): SeccompPolicy {
  const shipped = (path: string) => {
    const text = SHIPPED_POLICIES[path.slice(path.lastIndexOf("/") + 1)];
    if (text === undefined) throw new Error(`no shipped seccomp policy ${path}`);
    return text;
  };
  return parsePolicy(shipped(name), file, shipped);
}

function checkPolicyDir(dir: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = Deno.statSync(dir).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`seccomp policy directory ${dir} does not exist`);
    }
    throw new UserError(`seccomp policy directory ${dir}: ${(e as Error).message}`);
  }
  if (!isDirectory) throw new UserError(`seccomp policy directory ${dir} is not a directory`);
}

/**
 * Turns a parsed {@link SeccompPolicy} into a libseccomp filter and loads it into every thread
 * of the process: calls no rule matches kill the process (SIGSYS), or are only logged while a
 * policy is being worked out.
 *
 * @module
 */

import { UserError } from "../errors.ts";
import { errnoName } from "../ffi/errno.ts";
import {
  libseccomp,
  SCMP_ACT_ALLOW,
  SCMP_ACT_KILL_PROCESS,
  SCMP_ACT_LOG,
  SCMP_ARG_CMP,
  SCMP_CMP_EQ,
  SCMP_CMP_GE,
  SCMP_CMP_GT,
  SCMP_CMP_LE,
  SCMP_CMP_LT,
  SCMP_CMP_MASKED_EQ,
  SCMP_CMP_NE,
  SCMP_FLTATR_ACT_BADARCH,
  SCMP_FLTATR_CTL_TSYNC,
  scmpActErrno,
} from "../ffi/seccomp.ts";
import { StructBuffer } from "../ffi/struct.ts";
import { type ArgCondition, PolicyError, type RuleAction, type SeccompPolicy } from "./policy.ts";

/** One `struct scmp_arg_cmp` as it is handed to libseccomp. */
export interface CompiledComparison {
  /** The argument's index. */
  readonly arg: number;
  /** An `SCMP_CMP_*` operator. */
  readonly op: number;
  /** The value compared with; for `SCMP_CMP_MASKED_EQ`, the mask. */
  readonly datumA: bigint;
  /** For `SCMP_CMP_MASKED_EQ`, what the masked argument must equal; otherwise 0. */
  readonly datumB: bigint;
}

/** The arguments of one `seccomp_rule_add_array` call. */
export interface CompiledRule {
  /** An `SCMP_ACT_*` action word. */
  readonly action: number;
  /** The syscall's number. */
  readonly syscall: number;
  /** The comparisons that must all hold, at most one per argument. */
  readonly comparisons: readonly CompiledComparison[];
  /** Where the rule was written: `file:line`. */
  readonly source: string;
}

/** How a filter is loaded. */
export interface LoadOptions {
  /** Log calls no rule matches (`SCMP_ACT_LOG`) instead of killing the process. */
  readonly logFailures: boolean;
}

const OPERATORS: Readonly<Record<ArgCondition["op"], number>> = {
  eq: SCMP_CMP_EQ,
  ne: SCMP_CMP_NE,
  lt: SCMP_CMP_LT,
  le: SCMP_CMP_LE,
  gt: SCMP_CMP_GT,
  ge: SCMP_CMP_GE,
  masked_eq: SCMP_CMP_MASKED_EQ,
};

function actionWord(action: RuleAction): number {
  return action.kind === "allow" ? SCMP_ACT_ALLOW : scmpActErrno(action.errno);
}

function comparison(c: ArgCondition): CompiledComparison {
  return c.op === "masked_eq"
    ? { arg: c.arg, op: SCMP_CMP_MASKED_EQ, datumA: c.mask ?? 0n, datumB: c.value }
    : { arg: c.arg, op: OPERATORS[c.op], datumA: c.value, datumB: 0n };
}

/**
 * The exact (action, syscall, comparisons) tuples {@link loadSeccompPolicy} hands to libseccomp,
 * one per rule of `policy`.
 * @throws PolicyError for a rule comparing one argument twice (libseccomp refuses it)
 */
export function compileRules(policy: SeccompPolicy): CompiledRule[] {
  return policy.rules.map((rule) => {
    const args = rule.conditions.map((c) => c.arg);
    if (new Set(args).size !== args.length) {
      throw new PolicyError(rule.source, `${rule.syscall} compares one argument twice in a rule`);
    }
    return {
      action: actionWord(rule.action),
      syscall: rule.nr,
      comparisons: rule.conditions.map(comparison),
      source: rule.source,
    };
  });
}

/** The rule's comparisons as the `struct scmp_arg_cmp` array `seccomp_rule_add_array` takes. */
function comparisonArray(comparisons: readonly CompiledComparison[]): Uint8Array {
  const extra = SCMP_ARG_CMP.size * Math.max(0, comparisons.length - 1);
  const out = new StructBuffer(SCMP_ARG_CMP, extra);
  comparisons.forEach((c, i) => {
    const delta = i * SCMP_ARG_CMP.size;
    out.setU32("arg", c.arg, delta);
    out.setU32("op", c.op, delta);
    out.setU64("datum_a", c.datumA, delta);
    out.setU64("datum_b", c.datumB, delta);
  });
  return out.bytes;
}

/**
 * Loads `policy` as a seccomp filter on every thread of this process (libseccomp's TSYNC), after
 * setting NO_NEW_PRIVS (libseccomp's default). A call no rule matches kills the process, or with
 * `logFailures` is logged and runs. A call made for another architecture (i386, x32) always kills
 * it. There is no way back: the filter stays for the life of the process.
 * @throws PolicyError when libseccomp refuses a rule; UserError when the kernel refuses the filter
 */
export function loadSeccompPolicy(policy: SeccompPolicy, options: LoadOptions): void {
  buildFilter(policy, options, true);
}

/**
 * Builds `policy`'s filter as {@link loadSeccompPolicy} would, without loading it: the VMM checks
 * every policy so before a device process needs it.
 * @throws PolicyError when libseccomp refuses a rule
 */
export function checkSeccompPolicy(policy: SeccompPolicy, options: LoadOptions): void {
  buildFilter(policy, options, false);
}

function buildFilter(policy: SeccompPolicy, options: LoadOptions, load: boolean): void {
  const rules = compileRules(policy);
  const seccomp = libseccomp();
  const ctx = seccomp.seccomp_init(options.logFailures ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
  if (ctx === null) throw new Error("seccomp_init failed");
  try {
    const attribute = (attr: number, value: number, name: string) => {
      const rc = seccomp.seccomp_attr_set(ctx, attr, value);
      if (rc < 0) throw new UserError(`seccomp_attr_set(${name}) failed: ${errnoName(-rc)}`);
    };
    attribute(SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS, "SCMP_FLTATR_ACT_BADARCH");
    attribute(SCMP_FLTATR_CTL_TSYNC, 1, "SCMP_FLTATR_CTL_TSYNC");
    rules.forEach((rule, i) => {
      const { action, syscall, comparisons, source } = rule;
      const array = comparisonArray(comparisons);
      const rc = seccomp.seccomp_rule_add_array(ctx, action, syscall, comparisons.length, array);
      if (rc < 0) {
        const name = policy.rules[i].syscall;
        throw new PolicyError(source, `libseccomp refused the rule for ${name}: ${errnoName(-rc)}`);
      }
    });
    if (!load) return;
    const rc = seccomp.seccomp_load(ctx);
    if (rc < 0) {
      throw new UserError(
        `loading the seccomp filter failed: ${
          errnoName(-rc)
        }; run with --disable-sandbox to go without`,
      );
    }
  } finally {
    seccomp.seccomp_release(ctx);
  }
}

// The minijail policy syntax as src/sandbox/policy.ts reads it: every construct, every malformed
// line with the file and line it is reported at, includes and include cycles, how a syscall given
// twice merges, and the rule set a sample policy compiles to for libseccomp.

import assert from "node:assert/strict";
import { UserError } from "../../src/errors.ts";
import { Errno } from "../../src/ffi/errno.ts";
import {
  SCMP_ACT_ALLOW,
  SCMP_CMP_EQ,
  SCMP_CMP_GE,
  SCMP_CMP_GT,
  SCMP_CMP_LE,
  SCMP_CMP_LT,
  SCMP_CMP_MASKED_EQ,
  SCMP_CMP_NE,
  scmpActErrno,
} from "../../src/ffi/seccomp.ts";
import { POLICY_CONSTANTS } from "../../src/sandbox/constants.ts";
import {
  type ArgCondition,
  MAX_RULES_PER_STATEMENT,
  parsePolicy,
  parsePolicyFile,
  PolicyError,
  type SeccompPolicy,
} from "../../src/sandbox/policy.ts";
import { compileRules } from "../../src/sandbox/seccomp.ts";
import { resolveSyscallNumber } from "../../src/ffi/seccomp.ts";
import { cValues } from "../helpers/c_values.ts";

const ALL_ONES = 0xffff_ffff_ffff_ffffn;

/** The value of a policy constant, as the parser gives it. */
function constant(name: string): bigint {
  assert.ok(Object.hasOwn(POLICY_CONSTANTS, name), name);
  return BigInt(POLICY_CONSTANTS[name]);
}

const CLONE_THREAD = constant("CLONE_THREAD");
const CLONE_VM = constant("CLONE_VM");
const PROT_EXEC = constant("PROT_EXEC");
const PROT_READ = constant("PROT_READ");
const PROT_WRITE = constant("PROT_WRITE");
const O_RDWR = constant("O_RDWR");
const O_CLOEXEC = constant("O_CLOEXEC");

/** Parses one file, `test.policy`, that includes nothing. */
function parse(text: string): SeccompPolicy {
  return parsePolicy(text, "test.policy", (path) => {
    throw new Error(`unexpected include of ${path}`);
  });
}

/** Parses `top` out of a set of in-memory files; a missing file reads as "not found". */
function parseFiles(files: Readonly<Record<string, string>>, top: string): SeccompPolicy {
  return parsePolicy(files[top], top, (path) => {
    if (!(path in files)) throw new Deno.errors.NotFound(`${path} not found`);
    return files[path];
  });
}

/** The conditions of each rule of `text`'s only syscall. */
function conditionsOf(text: string): (readonly ArgCondition[])[] {
  return parse(text).rules.map((rule) => rule.conditions);
}

/** Asserts that parsing `text` (or running `fn`) throws a PolicyError whose message is `message`. */
function assertPolicyError(text: string | (() => unknown), message: string): void {
  assert.throws(
    typeof text === "string" ? () => parse(text) : text,
    (e: unknown) => {
      assert.ok(e instanceof PolicyError, `expected a PolicyError, got ${e}`);
      assert.equal(e.message, message);
      return true;
    },
  );
}

const eq = (arg: number, value: bigint): ArgCondition => ({ arg, op: "eq", value });
const masked = (arg: number, mask: bigint, value: bigint): ArgCondition => ({
  arg,
  op: "masked_eq",
  value,
  mask,
});

Deno.test("comments, blank lines, '1' and 'allow' give unconditional allow rules", () => {
  const policy = parse([
    "# a comment",
    "",
    "read: 1",
    "   ",
    "write: allow # a trailing comment",
    "kill: 1",
  ].join("\n"));
  assert.deepEqual(policy.files, ["test.policy"]);
  assert.deepEqual(policy.rules, [
    { syscall: "read", nr: 0, conditions: [], action: { kind: "allow" }, source: "test.policy:3" },
    { syscall: "write", nr: 1, conditions: [], action: { kind: "allow" }, source: "test.policy:5" },
    { syscall: "kill", nr: 62, conditions: [], action: { kind: "allow" }, source: "test.policy:6" },
  ]);
});

Deno.test("numbers: decimal, 0x hex, 0 octal, negative wraps to 64 bits", () => {
  assert.deepEqual(conditionsOf("read: arg0 == 10 || arg0 == 0x1F || arg0 == 017 || arg0 == 0"), [
    [eq(0, 10n)],
    [eq(0, 0x1fn)],
    [eq(0, 0o17n)],
    [eq(0, 0n)],
  ]);
  assert.deepEqual(conditionsOf("read: arg0 == -1 || arg0 == -0x8000000000000000"), [
    [eq(0, ALL_ONES)],
    [eq(0, 1n << 63n)],
  ]);
  assert.deepEqual(conditionsOf("read: arg0 == 0xffffffffffffffff"), [[eq(0, ALL_ONES)]]);
});

Deno.test("comparison operators map to unsigned comparisons", () => {
  const ops = conditionsOf(
    "read: arg0 == 1 || arg1 != 2 || arg2 < 3 || arg3 <= 4 || arg4 > 5 || arg5 >= 6",
  );
  assert.deepEqual(ops, [
    [{ arg: 0, op: "eq", value: 1n }],
    [{ arg: 1, op: "ne", value: 2n }],
    [{ arg: 2, op: "lt", value: 3n }],
    [{ arg: 3, op: "le", value: 4n }],
    [{ arg: 4, op: "gt", value: 5n }],
    [{ arg: 5, op: "ge", value: 6n }],
  ]);
});

Deno.test("'&' is any bit of the mask set: one masked compare per bit", () => {
  assert.deepEqual(conditionsOf("clone: arg0 & CLONE_THREAD"), [
    [masked(0, CLONE_THREAD, CLONE_THREAD)],
  ]);
  assert.deepEqual(conditionsOf("read: arg1 & 0x5"), [
    [masked(1, 1n, 1n)],
    [masked(1, 4n, 4n)],
  ]);
  assert.deepEqual(conditionsOf("read: arg1 & 0x8000000000000000"), [
    [masked(1, 1n << 63n, 1n << 63n)],
  ]);
});

Deno.test("'in' is no bit outside the mask set", () => {
  assert.deepEqual(conditionsOf("mmap: arg2 in ~PROT_EXEC"), [[masked(2, PROT_EXEC, 0n)]]);
  assert.deepEqual(conditionsOf("mmap: arg2 in PROT_READ|PROT_WRITE"), [
    [masked(2, ALL_ONES ^ (PROT_READ | PROT_WRITE), 0n)],
  ]);
  assert.deepEqual(conditionsOf("read: arg0 in 0xffffffffffffffff"), [[masked(0, 0n, 0n)]]);
});

Deno.test("values: named constants combined with |, ~ and parentheses", () => {
  assert.deepEqual(conditionsOf("openat: arg2 == O_RDWR|O_CLOEXEC"), [[eq(2, O_RDWR | O_CLOEXEC)]]);
  assert.deepEqual(conditionsOf("read: arg0 == ~(PROT_READ | PROT_WRITE)"), [
    [eq(0, ALL_ONES ^ (PROT_READ | PROT_WRITE))],
  ]);
  assert.deepEqual(conditionsOf("read: arg0 == ~0 | 1"), [[eq(0, ALL_ONES)]]);
  assert.deepEqual(conditionsOf("read: arg0 == (1 | (2 | 4))"), [[eq(0, 7n)]]);
});

Deno.test("'||' gives one rule per alternative, '&&' puts conditions in one rule", () => {
  const policy = parse("fcntl: arg1 == F_GETFL || arg1 == F_SETFL && arg2 == O_CLOEXEC");
  assert.deepEqual(policy.rules.map((rule) => rule.conditions), [
    [eq(1, constant("F_GETFL"))],
    [eq(1, constant("F_SETFL")), eq(2, O_CLOEXEC)],
  ]);
  assert.ok(policy.rules.every((rule) => rule.source === "test.policy:1"));
});

Deno.test("'&&' of bit tests expands to every combination of their bits", () => {
  assert.deepEqual(conditionsOf("read: arg0 & 3 && arg1 & 0x30"), [
    [masked(0, 1n, 1n), masked(1, 0x10n, 0x10n)],
    [masked(0, 1n, 1n), masked(1, 0x20n, 0x20n)],
    [masked(0, 2n, 2n), masked(1, 0x10n, 0x10n)],
    [masked(0, 2n, 2n), masked(1, 0x20n, 0x20n)],
  ]);
});

Deno.test("return ERRNO, by name or number, and EXPR; return ERRNO", () => {
  const policy = parse([
    "openat: return EACCES",
    "clone3: return 38",
    "socket: arg0 == AF_INET; return EPERM",
    "getpid: arg0 == 0; allow",
  ].join("\n"));
  assert.deepEqual(
    policy.rules.map(({ syscall, action, conditions }) => ({ syscall, action, conditions })),
    [
      { syscall: "openat", action: { kind: "errno", errno: Errno.EACCES }, conditions: [] },
      { syscall: "clone3", action: { kind: "errno", errno: Errno.ENOSYS }, conditions: [] },
      {
        syscall: "socket",
        action: { kind: "errno", errno: Errno.EPERM },
        conditions: [eq(0, constant("AF_INET"))],
      },
      { syscall: "getpid", action: { kind: "allow" }, conditions: [eq(0, 0n)] },
    ],
  );
});

Deno.test("conditions on one argument merge into one comparison when they can", () => {
  // Two bit tests: both bits must be set.
  assert.deepEqual(conditionsOf("clone: arg0 & CLONE_THREAD && arg0 & CLONE_VM"), [
    [masked(0, CLONE_THREAD | CLONE_VM, CLONE_THREAD | CLONE_VM)],
  ]);
  // An equality decides the others.
  assert.deepEqual(conditionsOf("read: arg0 == 5 && arg0 < 10 && arg0 & 4"), [[eq(0, 5n)]]);
  // 'in 3' rules out bit 4, so only the alternative with bit 1 remains.
  assert.deepEqual(conditionsOf("read: arg0 in 3 && arg0 & 5"), [
    [masked(0, (ALL_ONES ^ 3n) | 1n, 1n)],
  ]);
  // The same condition twice is one.
  assert.deepEqual(conditionsOf("read: arg0 != 1 && arg0 != 1 && arg1 == 2"), [
    [{ arg: 0, op: "ne", value: 1n }, eq(1, 2n)],
  ]);
  // Conditions come ordered by argument.
  assert.deepEqual(conditionsOf("read: arg2 == 1 && arg0 == 2"), [[eq(0, 2n), eq(2, 1n)]]);
});

Deno.test("a statement may go on over lines ending in a backslash", () => {
  const policy = parse([
    "read: 1",
    "madvise: arg2 == MADV_DONTNEED || \\",
    "  arg2 == MADV_FREE \\",
    "  || arg2 == MADV_DONTDUMP",
    "write: 1",
  ].join("\n"));
  assert.deepEqual(policy.rules.map((rule) => [rule.syscall, rule.source]), [
    ["read", "test.policy:1"],
    ["madvise", "test.policy:2"],
    ["madvise", "test.policy:2"],
    ["madvise", "test.policy:2"],
    ["write", "test.policy:5"],
  ]);
  assertPolicyError("read: 1\nwrite: arg0 == \\\n  FOO", "test.policy:2: unknown constant 'FOO'");
});

Deno.test("malformed lines are PolicyErrors naming the file and line", () => {
  const cases: readonly (readonly [string, string])[] = [
    ["read 1", "expected 'syscall: filter', '@include PATH' or '@frequency PATH', found 'read 1'"],
    ["{read, write}: 1", "invalid syscall name '{read, write}'"],
    ["frobnicate: 1", "unknown syscall 'frobnicate' on x86_64"],
    ["mmap2: 1", "unknown syscall 'mmap2' on x86_64"],
    ["read:", "missing filter after 'read:'"],
    ["read: arg0 == FOO", "unknown constant 'FOO'"],
    ["read: arg0 == 09", "invalid number '09'"],
    ["read: arg0 == 0x", "invalid number '0x'"],
    ["read: arg0 == 12ab", "invalid number '12ab'"],
    ["read: arg0 == 0x10000000000000000", "0x10000000000000000 does not fit in 64 bits"],
    ["read: arg0 == -0x8000000000000001", "-0x8000000000000001 does not fit in 64 bits"],
    ["read: arg6 == 1", "arg6 is out of range (a syscall has arg0 to arg5)"],
    ["read: arg0 = 1", "unexpected '='"],
    ["read: arg0 == 1 $", "unexpected '$'"],
    ["read: arg0 ~ 1", "expected an operator (==, !=, <, <=, >, >=, &, in), found '~'"],
    ["read: arg0 ==", "missing a value at the end of the filter"],
    ["read: arg0 == ||", "expected a value, found '||'"],
    ["read: arg0 == ~~1", "'~~' is not allowed"],
    ["read: arg0 == (1|2", "missing ')'"],
    ["read: arg0 == 1 &&", "missing an argument at the end of the filter"],
    ["read: arg0 == 1 || foo == 2", "expected arg0 to arg5, found 'foo'"],
    ["read: arg0 == 1 return EPERM", "unexpected 'return' after the filter"],
    ["read: 1 1", "unexpected '1' after the filter"],
    [
      "read: foo == 1",
      "expected a condition (argN OP VALUE) or an action (allow, 1 or return ERRNO), found 'foo'",
    ],
    ["read: arg0 == 1;", "missing an action at the end of the filter"],
    ["read: arg0 == 1; 2", "expected an action (allow, 1 or return ERRNO), found '2'"],
    ["read: kill", "action 'kill' is not supported (only allow, 1 or return ERRNO)"],
    [
      "read: kill-process",
      "action 'kill-process' is not supported (only allow, 1 or return ERRNO)",
    ],
    ["read: arg0 == 1; trap", "action 'trap' is not supported (only allow, 1 or return ERRNO)"],
    ["read: return", "missing a value at the end of the filter"],
    ["read: return EBOGUS", "unknown constant 'EBOGUS'"],
    ["read: return 5000", "errno 5000 is out of range (0 to 4095)"],
    ["read: return -1", "errno 18446744073709551615 is out of range (0 to 4095)"],
    ["read: arg0 & 0", "'arg0 & 0' can never hold"],
    ["read: arg0 == 1 || arg0 == 5 && arg0 > 10", "'arg0 == 5 && arg0 > 10' can never hold"],
    [
      "read: arg0 >= 1 && arg0 <= 5",
      "'arg0 >= 1 && arg0 <= 5' compares arg0 in two ways that one libseccomp rule cannot" +
      " (only == and the bit tests & and in combine)",
    ],
    [
      "read: arg0 & 0xffffffffffffffff && arg1 & 0xffffffffffffffff",
      `the filter expands to more than ${MAX_RULES_PER_STATEMENT} rules`,
    ],
    ["@default kill", "unknown directive '@default' (only @include and @frequency are supported)"],
    ["@include", "@include takes one path"],
    ["@include a.policy b.policy", "@include takes one path"],
    ["@include /usr/share/policy/", "@include /usr/share/policy/ names no file"],
    ["@frequency", "@frequency takes one path"],
  ];
  for (const [line, what] of cases) {
    // Each bad line sits on line 3, after a comment and a good rule.
    assertPolicyError(`# header\nwrite: 1\n${line}`, `test.policy:3: ${what}`);
  }
});

Deno.test("a PolicyError is a one-line UserError", () => {
  assert.throws(() => parse("read: arg0 == FOO"), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.name, "PolicyError");
    assert.ok(!e.message.includes("\n"));
    assert.equal((e as PolicyError).where, "test.policy:1");
    return true;
  });
});

Deno.test("@include reads the file of that name in the including file's directory", () => {
  const files = {
    "/etc/vmm/block_device.policy": [
      "@include /usr/share/policy/crosvm/common.policy",
      "@include ./block.policy",
      "fdatasync: 1",
    ].join("\n"),
    "/etc/vmm/common.policy": "read: 1\nwrite: 1",
    "/etc/vmm/block.policy": "# block\npread64: 1",
  };
  const policy = parseFiles(files, "/etc/vmm/block_device.policy");
  assert.deepEqual(policy.files, [
    "/etc/vmm/block_device.policy",
    "/etc/vmm/common.policy",
    "/etc/vmm/block.policy",
  ]);
  assert.deepEqual(policy.rules.map((rule) => [rule.syscall, rule.source]), [
    ["read", "/etc/vmm/common.policy:1"],
    ["write", "/etc/vmm/common.policy:2"],
    ["pread64", "/etc/vmm/block.policy:2"],
    ["fdatasync", "/etc/vmm/block_device.policy:3"],
  ]);
  // A policy named without a directory includes from the current one.
  assert.deepEqual(
    parseFiles({ "top.policy": "@include /x/y.policy", "y.policy": "read: 1" }, "top.policy").files,
    ["top.policy", "y.policy"],
  );
});

Deno.test("includes nest; a cycle or a missing file is an error at the @include line", () => {
  const nested = parseFiles({
    "d/a.policy": "@include ./b.policy\nread: 1",
    "d/b.policy": "@include ./c.policy",
    "d/c.policy": "write: 1",
  }, "d/a.policy");
  assert.deepEqual(nested.rules.map((rule) => rule.source), ["d/c.policy:1", "d/a.policy:2"]);
  assertPolicyError(
    () =>
      parseFiles({
        "d/a.policy": "read: 1\n@include ./b.policy",
        "d/b.policy": "# b\n@include /anywhere/a.policy",
      }, "d/a.policy"),
    "d/b.policy:2: @include cycle: d/a.policy -> d/b.policy -> d/a.policy",
  );
  assertPolicyError(
    () => parseFiles({ "d/a.policy": "@include ./a.policy" }, "d/a.policy"),
    "d/a.policy:1: @include cycle: d/a.policy -> d/a.policy",
  );
  assertPolicyError(
    () => parseFiles({ "d/a.policy": "read: 1\n\n@include ./gone.policy" }, "d/a.policy"),
    "d/a.policy:3: cannot read @include d/gone.policy: d/gone.policy not found",
  );
  // An error inside an included file names that file.
  assertPolicyError(
    () => parseFiles({ "d/a.policy": "@include ./b.policy", "d/b.policy": "\nbad" }, "d/a.policy"),
    "d/b.policy:2: expected 'syscall: filter', '@include PATH' or '@frequency PATH', found 'bad'",
  );
});

Deno.test("@frequency is accepted and ignored", () => {
  const policy = parse("@frequency ./common_device.frequency\nread: 1");
  assert.deepEqual(policy.files, ["test.policy"]);
  assert.deepEqual(policy.rules.map((rule) => rule.syscall), ["read"]);
});

Deno.test("a syscall given again adds alternatives, as minijail's compiler merges them", () => {
  const policy = parseFiles({
    "d/device.policy": [
      "@include ./common.policy",
      "prctl: arg0 == PR_SET_NAME",
      "ioctl: arg1 == FIONBIO || arg1 == FIOCLEX",
      "read: arg0 == 3",
      "read: 1",
    ].join("\n"),
    "d/common.policy": "prctl: arg0 == PR_SET_VMA\nioctl: arg1 == FIOCLEX",
  }, "d/device.policy");
  assert.deepEqual(policy.rules.map((rule) => [rule.syscall, rule.conditions, rule.source]), [
    ["prctl", [eq(0, constant("PR_SET_VMA"))], "d/common.policy:1"],
    ["prctl", [eq(0, constant("PR_SET_NAME"))], "d/device.policy:2"],
    ["ioctl", [eq(1, constant("FIOCLEX"))], "d/common.policy:2"],
    // FIOCLEX again is dropped: the rule exists.
    ["ioctl", [eq(1, constant("FIONBIO"))], "d/device.policy:3"],
    // An unconditional rule covers the conditional ones before it.
    ["read", [], "d/device.policy:5"],
  ]);
});

Deno.test("nothing may follow an unconditional rule; one syscall takes one action", () => {
  assertPolicyError(
    () =>
      parseFiles({
        "d/device.policy": "@include ./common.policy\n\nread: 1",
        "d/common.policy": "read: 1",
      }, "d/device.policy"),
    "d/device.policy:3: read already has an unconditional rule at d/common.policy:1",
  );
  assertPolicyError(
    "read: 1\nread: arg0 == 1",
    "test.policy:2: read already has an unconditional rule at test.policy:1",
  );
  assertPolicyError(
    "openat: return EACCES\nread: 1\nopenat: arg2 == O_RDONLY",
    "test.policy:3: openat is allowed here but returns EACCES at test.policy:1;" +
      " all rules of one syscall must take the same action",
  );
  assertPolicyError(
    "socket: arg0 == AF_UNIX; return EPERM\nsocket: arg0 == AF_INET; return EACCES",
    "test.policy:2: socket returns EACCES here but returns EPERM at test.policy:1;" +
      " all rules of one syscall must take the same action",
  );
});

Deno.test("syscall numbers are x86_64's <asm/unistd_64.h> and name back", async () => {
  const names = ["read", "write", "mmap", "clone", "clone3", "kill", "openat", "socket", "ioctl"];
  const policy = parse(names.map((name) => `${name}: 1`).join("\n"));
  const c = await cValues(["asm/unistd_64.h"], names.map((name) => `__NR_${name}`));
  for (const rule of policy.rules) {
    assert.equal(rule.nr, c.get(`__NR_${rule.syscall}`), rule.syscall);
    assert.equal(resolveSyscallNumber(rule.nr), rule.syscall);
  }
  assert.equal(resolveSyscallNumber(100_000), undefined);
});

Deno.test("a sample policy compiles to these libseccomp rules", () => {
  const policy = parse([
    "read: 1",
    "clone: arg0 & CLONE_THREAD",
    "mmap: arg2 in ~PROT_EXEC",
    "fcntl: arg1 == F_GETFL || arg1 != F_SETFL && arg2 < 4",
    "futex: arg1 <= 1 || arg1 > 128 || arg1 >= 129",
    "openat: return EACCES",
    "socket: arg0 == AF_INET; return EPERM",
  ].join("\n"));
  const cmp = (arg: number, op: number, datumA: bigint, datumB = 0n) => ({
    arg,
    op,
    datumA,
    datumB,
  });
  assert.deepEqual(compileRules(policy), [
    { action: SCMP_ACT_ALLOW, syscall: 0, comparisons: [], source: "test.policy:1" },
    {
      action: SCMP_ACT_ALLOW,
      syscall: 56,
      comparisons: [cmp(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)],
      source: "test.policy:2",
    },
    {
      action: SCMP_ACT_ALLOW,
      syscall: 9,
      comparisons: [cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0n)],
      source: "test.policy:3",
    },
    {
      action: SCMP_ACT_ALLOW,
      syscall: 72,
      comparisons: [cmp(1, SCMP_CMP_EQ, constant("F_GETFL"))],
      source: "test.policy:4",
    },
    {
      action: SCMP_ACT_ALLOW,
      syscall: 72,
      comparisons: [cmp(1, SCMP_CMP_NE, constant("F_SETFL")), cmp(2, SCMP_CMP_LT, 4n)],
      source: "test.policy:4",
    },
    {
      action: SCMP_ACT_ALLOW,
      syscall: 202,
      comparisons: [cmp(1, SCMP_CMP_LE, 1n)],
      source: "test.policy:5",
    },
    {
      action: SCMP_ACT_ALLOW,
      syscall: 202,
      comparisons: [cmp(1, SCMP_CMP_GT, 128n)],
      source: "test.policy:5",
    },
    {
      action: SCMP_ACT_ALLOW,
      syscall: 202,
      comparisons: [cmp(1, SCMP_CMP_GE, 129n)],
      source: "test.policy:5",
    },
    { action: scmpActErrno(Errno.EACCES), syscall: 257, comparisons: [], source: "test.policy:6" },
    {
      action: scmpActErrno(Errno.EPERM),
      syscall: 41,
      comparisons: [cmp(0, SCMP_CMP_EQ, constant("AF_INET"))],
      source: "test.policy:7",
    },
  ]);
});

Deno.test("compileRules refuses a hand-built rule comparing one argument twice", () => {
  const rule = parse("read: arg0 == 1").rules[0];
  const twice = { ...rule, conditions: [eq(0, 1n), eq(0, 2n)] };
  assertPolicyError(
    () => compileRules({ files: ["test.policy"], rules: [twice] }),
    "test.policy:1: read compares one argument twice in a rule",
  );
});

Deno.test("parsePolicyFile reads a file and its includes from disk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "policy_" });
  try {
    await Deno.writeTextFile(`${dir}/common.policy`, "read: 1\n");
    await Deno.writeTextFile(
      `${dir}/rng.policy`,
      "@include /usr/share/policy/crosvm/common.policy\ngetrandom: 1\n",
    );
    const policy = parsePolicyFile(`${dir}/rng.policy`);
    assert.deepEqual(policy.files, [`${dir}/rng.policy`, `${dir}/common.policy`]);
    assert.deepEqual(policy.rules.map((rule) => rule.syscall), ["read", "getrandom"]);
    await Deno.writeTextFile(`${dir}/broken.policy`, "read: 1\n@include ./missing.policy\n");
    assert.throws(() => parsePolicyFile(`${dir}/broken.policy`), (e: unknown) => {
      assert.ok(e instanceof PolicyError);
      assert.ok(
        e.message.startsWith(
          `${dir}/broken.policy:2: cannot read @include ${dir}/missing.policy: `,
        ),
        e.message,
      );
      return true;
    });
    assert.throws(() => parsePolicyFile(`${dir}/none.policy`), (e: unknown) => {
      assert.ok(e instanceof UserError && !(e instanceof PolicyError));
      assert.ok(e.message.startsWith(`cannot read seccomp policy ${dir}/none.policy: `), e.message);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the Deno runtime policy the seccomp tests load parses", () => {
  const policy = parsePolicyFile(new URL("./deno_runtime.policy", import.meta.url).pathname);
  assert.ok(policy.rules.some((rule) => rule.syscall === "futex"));
  assert.deepEqual(
    policy.rules.find((rule) => rule.syscall === "clone3")?.action,
    { kind: "errno", errno: Errno.ENOSYS },
  );
});

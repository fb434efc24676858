// crosvm's key=value,key option syntax: parsing, quoting, the omitted first key, typed
// accessors, and a one-line UsageError naming the option and key for every mistake.

import assert from "node:assert/strict";
import { UsageError } from "../../src/cli/errors.ts";
import {
  type KeySchema,
  type KeyValues,
  parseKeyValues,
  rejectUnknownKeys,
} from "../../src/cli/key_values.ts";

const SERIAL: KeySchema = ["type", "num", "path", "console", "stdin"];

/** The entries of `values` as [key, value] pairs, in order. */
const entries = (values: KeyValues) => [...values.entries()];

/** Asserts that `run` throws a one-line UsageError whose message contains every part. */
function assertUsageError(run: () => unknown, ...parts: string[]): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof UsageError, `not a UsageError: ${error}`);
    assert.doesNotMatch(error.message, /\n/);
    for (const part of parts) assert.ok(error.message.includes(part), error.message);
    return true;
  });
}

Deno.test("key=value entries keep their order", () => {
  const values = parseKeyValues("--serial", "type=file,path=/tmp/x,num=2");
  assert.deepEqual(entries(values), [["type", "file"], ["path", "/tmp/x"], ["num", "2"]]);
});

Deno.test("a bare key is boolean true", () => {
  const values = parseKeyValues("--serial", "num=2,console,stdin");
  assert.deepEqual(entries(values), [["num", "2"], ["console", true], ["stdin", true]]);
});

Deno.test("an unquoted value runs to the next comma and may contain '='", () => {
  assert.equal(parseKeyValues("--x", "path=foo=bar==.log,a").get("path"), "foo=bar==.log");
});

Deno.test("keys may contain digits, '_' and '-'", () => {
  const values = parseKeyValues("--cpus", "num-cores=2,x_1=3,9a");
  assert.deepEqual(entries(values), [["num-cores", "2"], ["x_1", "3"], ["9a", true]]);
});

Deno.test("a double-quoted value may contain commas, brackets and escaped quotes", () => {
  const values = parseKeyValues("--serial", String.raw`path="/a,b/[c]/\"d\"\\e",num=1`);
  assert.deepEqual(entries(values), [["path", String.raw`/a,b/[c]/"d"\e`], ["num", "1"]]);
});

Deno.test("a single-quoted value is taken literally", () => {
  const values = parseKeyValues("--serial", String.raw`path='/a,b\n"c"',console`);
  assert.deepEqual(entries(values), [["path", String.raw`/a,b\n"c"`], ["console", true]]);
});

Deno.test("quotes give an empty string value", () => {
  assert.equal(parseKeyValues("--x", 'a="",b').get("a"), "");
  assert.equal(parseKeyValues("--x", "a=''").get("a"), "");
});

Deno.test("with a schema, the first key may be omitted", () => {
  assert.deepEqual(entries(parseKeyValues("-m", "512", ["size"])), [["size", "512"]]);
  assert.deepEqual(entries(parseKeyValues("--serial", "stdout,num=2", SERIAL)), [
    ["type", "stdout"],
    ["num", "2"],
  ]);
  assert.deepEqual(entries(parseKeyValues("--serial", '"a,b",num=2', SERIAL)), [
    ["type", "a,b"],
    ["num", "2"],
  ]);
});

Deno.test("with a schema, a bare first entry naming a key stays a flag", () => {
  const values = parseKeyValues("--serial", "console,type=sink", SERIAL);
  assert.deepEqual(entries(values), [["console", true], ["type", "sink"]]);
});

Deno.test("without a schema, any key is accepted and no key is implied", () => {
  assert.deepEqual(entries(parseKeyValues("--x", "512,speed=9")), [["512", true], ["speed", "9"]]);
});

Deno.test("the option's value may not be empty", () => {
  assertUsageError(() => parseKeyValues("--serial", ""), "--serial", "empty");
});

for (
  const [text, where] of [[",a", "position 0"], ["a,,b", "position 2"], ["=5", "position 0"]]
) {
  Deno.test(`an empty key is refused: ${text}`, () => {
    assertUsageError(() => parseKeyValues("--serial", text), "--serial", "empty key", where);
  });
}

Deno.test("a trailing comma is refused", () => {
  assertUsageError(() => parseKeyValues("--serial", "num=1,"), "--serial", "trailing comma");
});

Deno.test("a duplicate key is refused, naming it", () => {
  assertUsageError(() => parseKeyValues("--serial", "num=1,num=2"), "--serial", '"num"');
  assertUsageError(
    () => parseKeyValues("-m", "512,size=1", ["size"]),
    "-m",
    'duplicate key "size"',
  );
});

Deno.test("an unknown key is refused with a schema, naming the option and key", () => {
  assertUsageError(
    () => parseKeyValues("--serial", "type=sink,speed=9", SERIAL),
    "--serial",
    'unknown key "speed"',
  );
});

Deno.test("rejectUnknownKeys refuses keys outside the list and passes known ones", () => {
  const values = parseKeyValues("--cpus", "num-cores=2,clusters=x");
  assertUsageError(() => rejectUnknownKeys(values, ["num-cores"]), "--cpus", '"clusters"');
  assert.doesNotThrow(() => rejectUnknownKeys(values, ["num-cores", "clusters"]));
});

Deno.test("a key with an invalid character is refused", () => {
  assertUsageError(() => parseKeyValues("--x", "a.b=1"), "--x", 'unexpected "."', "a");
});

Deno.test("a value may not be empty unless quoted", () => {
  assertUsageError(() => parseKeyValues("--serial", "path=,num=1"), "--serial", "path", "empty");
});

Deno.test("quotes inside an unquoted value are refused", () => {
  assertUsageError(() => parseKeyValues("--serial", 'path=a"b'), "--serial", "quote", "path");
});

Deno.test("a value in brackets is a nested struct's text, commas and all", () => {
  const values = parseKeyValues("--net", "tap-name=a,vhost-net=[device=/dev/v,x=1],mac=m");
  assert.deepEqual(entries(values), [
    ["tap-name", "a"],
    ["vhost-net", "device=/dev/v,x=1"],
    ["mac", "m"],
  ]);
  assertUsageError(() => parseKeyValues("--net", "v=[device=x"), "--net", "unterminated [", "v");
  assertUsageError(() => parseKeyValues("--net", "v=[a=[b]]"), "--net", "nested [", "v");
  assertUsageError(() => parseKeyValues("--net", "v=[a]b"), "--net", 'unexpected "b"', "after v");
  assertUsageError(() => parseKeyValues("--net", "v=a]"), "--net", "bracket inside the value of v");
});

Deno.test("an unterminated quote is refused", () => {
  assertUsageError(() => parseKeyValues("--serial", 'path="/a'), "--serial", "unterminated");
  assertUsageError(() => parseKeyValues("--serial", "path='/a"), "--serial", "unterminated");
});

Deno.test('only \\" and \\\\ may be escaped in double quotes', () => {
  assertUsageError(() => parseKeyValues("--x", String.raw`p="a\nb"`), "--x", "escaped", "p");
});

Deno.test("text after a closing quote is refused", () => {
  assertUsageError(() => parseKeyValues("--x", 'p="a"b'), "--x", 'unexpected "b"', "after p");
});

Deno.test("string(): the value, undefined when absent, an error when bare", () => {
  const values = parseKeyValues("--serial", "path=/x,console");
  assert.equal(values.string("path"), "/x");
  assert.equal(values.string("num"), undefined);
  assertUsageError(() => values.string("console"), "--serial", "console needs a value");
});

Deno.test("flag(): absent, bare, true and false", () => {
  const values = parseKeyValues("--serial", "console,stdin=false,a=true");
  assert.equal(values.flag("console"), true);
  assert.equal(values.flag("stdin"), false);
  assert.equal(values.flag("a"), true);
  assert.equal(values.flag("num"), false);
});

Deno.test("flag(): anything but true or false is refused", () => {
  const values = parseKeyValues("--serial", "console=yes");
  assertUsageError(() => values.flag("console"), "--serial", "console", '"yes"');
});

Deno.test("choice(): one of the choices, undefined when absent", () => {
  const values = parseKeyValues("--serial", "type=file");
  assert.equal(values.choice("type", ["stdout", "file"]), "file");
  assert.equal(values.choice("mode", ["a"]), undefined);
  assertUsageError(() => values.choice("type", ["stdout", "sink"]), "type", "stdout, sink", "file");
});

Deno.test("integer(): decimal, hex, octal and binary, as crosvm", () => {
  const values = parseKeyValues("-m", "a=512,b=0x200,c=0o1000,d=0b1000000000");
  const range = { min: 1, max: 1024 };
  assert.deepEqual(["a", "b", "c", "d"].map((key) => values.integer(key, range)), [
    512,
    512,
    512,
    512,
  ]);
  assert.equal(values.integer("e", range), undefined);
});

for (const text of ["1.5", "abc", "0x", "+5", "1e3", "0X10"]) {
  Deno.test(`integer(): "${text}" is not an integer`, () => {
    const values = parseKeyValues("-m", `size=${text}`);
    assertUsageError(() => values.integer("size", { min: 1, max: 10 }), "-m", "size", "integer");
  });
}

for (const text of ["0", "-5", "11", "99999999999999999999999"]) {
  Deno.test(`integer(): ${text} is out of range and named`, () => {
    const values = parseKeyValues("-m", `size=${text}`);
    const range = { min: 1, max: 10, unit: "MiB" };
    assertUsageError(() => values.integer("size", range), "-m", "size", "1 to 10 MiB", text);
  });
}

Deno.test("integer(): the bounds themselves are accepted", () => {
  const values = parseKeyValues("-c", "lo=1,hi=255");
  assert.equal(values.integer("lo", { min: 1, max: 255 }), 1);
  assert.equal(values.integer("hi", { min: 1, max: 255 }), 255);
});

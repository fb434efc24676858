// Checks every layout, ioctl number and constant in src/ffi/kvm_abi.ts against the real
// <linux/kvm.h>: a generated C program prints what the compiler says (tests/helpers/c_values.ts),
// and we compare.

import assert from "node:assert/strict";
import * as abi from "../../src/ffi/kvm_abi.ts";
import { ALL_LAYOUTS, KVM_RUN_LAYOUT, type StructLayout } from "../../src/ffi/kvm_abi.ts";
import { cValues } from "../helpers/c_values.ts";

/** A C expression and the value our TypeScript ABI claims for it. */
type Expectations = Map<string, number>;

function layoutExpectations(layouts: readonly StructLayout[]): Expectations {
  const out: Expectations = new Map();
  for (const layout of layouts) {
    const struct = `struct ${layout.name}`;
    // kvm_run is a page-sized mapping; its C sizeof says nothing about what we map.
    if (layout !== KVM_RUN_LAYOUT) out.set(`sizeof(${struct})`, layout.size);
    for (const [path, offset] of Object.entries(layout.fields)) {
      out.set(`offsetof(${struct}, ${path})`, offset);
    }
  }
  return out;
}

/** Each key of these tables is the C macro name of its value. */
const MACRO_TABLES = {
  Ioctl: abi.Ioctl,
  Cap: abi.Cap,
  Exit: abi.Exit,
  SystemEvent: abi.SystemEvent,
  MpState: abi.MpState,
};

function macroExpectations(): Expectations {
  const out: Expectations = new Map();
  for (const table of Object.values(MACRO_TABLES)) {
    for (const [name, value] of Object.entries(table)) out.set(name, value);
  }
  // Loose exports named after their macro: KVM_API_VERSION, KVM_EXIT_IO_*, KVM_*_FLAG_*, ...
  for (const [name, value] of Object.entries(abi)) {
    if (name.startsWith("KVM_") && typeof value === "number") out.set(name, value);
  }
  return out;
}

function assertMatchesC(ours: Expectations, c: Map<string, number>): void {
  const wrong = [...ours]
    .filter(([expr, value]) => c.get(expr) !== value)
    .map(([expr, value]) => `${expr}: ours ${value}, <linux/kvm.h> ${c.get(expr)}`);
  assert.deepEqual(
    wrong,
    [],
    `${wrong.length} of ${ours.size} values differ:\n${wrong.join("\n")}`,
  );
}

const layouts = layoutExpectations([...ALL_LAYOUTS, KVM_RUN_LAYOUT]);
const macros = macroExpectations();
let values: Promise<Map<string, number>> | undefined;
/** One compilation serves every test below. */
const fromC = () => values ??= cValues(["linux/kvm.h"], [...layouts.keys(), ...macros.keys()]);

Deno.test("every struct size and member offset matches <linux/kvm.h>", async () => {
  assert.ok(layouts.size > 100, `only ${layouts.size} layout checks generated`);
  assertMatchesC(layouts, await fromC());
});

Deno.test("every ioctl number, capability, exit reason and flag matches <linux/kvm.h>", async () => {
  for (const [table, entries] of Object.entries(MACRO_TABLES)) {
    assert.ok(Object.keys(entries).length > 0, `${table} is empty`);
  }
  for (
    const name of ["KVM_PIT_SPEAKER_DUMMY", "KVM_IRQFD_FLAG_DEASSIGN", "KVM_IOEVENTFD_FLAG_PIO"]
  ) {
    assert.ok(macros.has(name), `${name} is not checked`);
  }
  assertMatchesC(macros, await fromC());
});

Deno.test("ALL_LAYOUTS lists every struct layout the module exports", () => {
  const exported = (Object.values(abi) as unknown[]).filter((v): v is StructLayout =>
    typeof v === "object" && v !== null && "fields" in v && "size" in v
  );
  const listed = new Set<StructLayout>([...ALL_LAYOUTS, KVM_RUN_LAYOUT]);
  const missing = exported.filter((l) => !listed.has(l)).map((l) => l.name);
  assert.deepEqual(missing, []);
});

Deno.test("every layout's members lie inside its struct, and names are unique", () => {
  const names = ALL_LAYOUTS.map((l) => l.name);
  assert.equal(new Set(names).size, names.length);
  for (const layout of ALL_LAYOUTS) {
    for (const [path, offset] of Object.entries(layout.fields)) {
      assert.ok(offset >= 0 && offset <= layout.size, `${layout.name}.${path} at ${offset}`);
    }
  }
});

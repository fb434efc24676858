/**
 * The fuzzers' randomness: a small seeded generator (mulberry32), so a failing case reproduces
 * from its printed seed, and the mutations applied to valid inputs (bit flips, interesting
 * values, truncation, repeats, splices).
 *
 * @module
 */

/** Where the seed of a run comes from: `FUZZ_SEED`, or the clock (and it is printed). */
export function runSeed(): number {
  const given = Deno.env.get("FUZZ_SEED");
  return given === undefined ? Date.now() >>> 0 : Number(given) >>> 0;
}

/** How many cases a run makes: `FUZZ_CASES`, or `fallback`. */
export function runCases(fallback: number): number {
  const given = Number(Deno.env.get("FUZZ_CASES"));
  return Number.isInteger(given) && given > 0 ? given : fallback;
}

/** Values at the edges of what fields hold, the likeliest to find an unchecked bound. */
const INTERESTING_U32 = [
  0,
  1,
  2,
  0x7f,
  0x80,
  0xff,
  0x100,
  0xfff,
  0x1000,
  0xffff,
  0x10000,
  0x7fff_ffff,
  0x8000_0000,
  0xffff_fffe,
  0xffff_ffff,
];

/** A seeded pseudo-random generator (mulberry32: small, fast, good enough for fuzzing). */
export class Random {
  #state: number;

  /** A generator that starts from `seed`. */
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  /** The next 32 random bits. */
  u32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in `[0, n)`. */
  below(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  /** One of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  /** A 32-bit value: mostly small, often at an edge, sometimes anything. */
  field(smallBelow = 64): number {
    const roll = this.below(8);
    if (roll < 4) return this.below(smallBelow);
    if (roll < 7) return this.pick(INTERESTING_U32);
    return this.u32();
  }

  /** `length` random bytes. */
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** A mutated copy of `input`: a few flips, edge values, a cut, a repeat or a splice. */
  mutate(input: Uint8Array): Uint8Array {
    let out = input.slice();
    const steps = 1 + this.below(4);
    for (let s = 0; s < steps; s++) {
      switch (this.below(6)) {
        case 0: // flip a bit
          if (out.length > 0) out[this.below(out.length)] ^= 1 << this.below(8);
          break;
        case 1: // an edge value over four bytes
          if (out.length >= 4) {
            new DataView(out.buffer).setUint32(this.below(out.length - 3), this.field(), true);
          }
          break;
        case 2: // cut short
          out = out.slice(0, this.below(out.length + 1));
          break;
        case 3: // a random byte
          if (out.length > 0) out[this.below(out.length)] = this.u32() & 0xff;
          break;
        case 4: { // repeat a run
          const at = this.below(out.length + 1);
          const run = out.slice(at, at + this.below(64));
          const grown = new Uint8Array(out.length + run.length);
          grown.set(out.subarray(0, at));
          grown.set(run, at);
          grown.set(out.subarray(at), at + run.length);
          out = grown;
          break;
        }
        default: { // splice in random bytes
          const at = this.below(out.length + 1);
          const junk = this.bytes(this.below(16));
          const grown = new Uint8Array(out.length + junk.length);
          grown.set(out.subarray(0, at));
          grown.set(junk, at);
          grown.set(out.subarray(at), at + junk.length);
          out = grown;
        }
      }
    }
    return out;
  }
}

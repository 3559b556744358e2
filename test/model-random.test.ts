// Seeded random syscall sequences through the model: every step picks
// uniformly from enumerateOps (all syscall kinds), sometimes with an injected
// ENOMEM at a random allocation of that syscall, and every resulting state
// must satisfy every property. A failure prints the seed and the trace in
// the operation syntax, ready for `mmcheck run`.
import { describe, expect, it } from 'vitest';
import { checkProperties, type Violation } from '../src/engine/model.ts';
import { countAllocations, createMmModel, enumerateOps, type Bounds } from '../models/mm/model.ts';
import { OP_KINDS, formatOp, type Op } from '../models/mm/ops.ts';
import type { State } from '../models/mm/state.ts';

/** mulberry32: a small deterministic PRNG. */
/**
 * A turn of the event loop: these loops run for a minute on a loaded machine,
 * and vitest's worker must answer its RPC in between (issue 14).
 */
const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BOUNDS: Partial<Bounds> = { procs: 3, pages: 8, maxLen: 3, ops: [...OP_KINDS], enomem: 1_000_000 };
const model = createMmModel({ bounds: BOUNDS });

interface Outcome {
  trace: Op[];
  final: State;
  failure?: { step: number; violations: Violation[] };
}

/** One random sequence of up to `length` syscalls from the initial state. */
function randomRun(seed: number, length: number, enomemRate: number): Outcome {
  const rnd = prng(seed);
  const pick = (n: number) => Math.floor(rnd() * n);
  let s = model.initial();
  const trace: Op[] = [];
  for (let step = 0; step < length; step++) {
    const ops = enumerateOps(s, model.bounds);
    if (ops.length === 0) break;
    let op = ops[pick(ops.length)]!;
    if (rnd() < enomemRate) {
      const n = countAllocations(model.kernel, s, op);
      if (n > 0) op = { ...op, enomem: 1 + pick(n) };
    }
    trace.push(op);
    s = model.next(s, op);
    const violations = checkProperties(model, s);
    if (violations.length > 0) return { trace, final: s, failure: { step, violations } };
  }
  return { trace, final: s };
}

function report(seed: number, o: Outcome): string {
  const f = o.failure!;
  return [
    `seed ${seed}: properties violated after step ${f.step + 1}`,
    ...f.violations.map((v) => `  ${v.property}: ${v.detail}`),
    'replay:',
    ...o.trace.map((op) => `  ${formatOp(op)}`),
  ].join('\n');
}

describe('random syscall sequences (seeded)', () => {
  const SEQUENCES = 3000;
  const LENGTH = 25;

  it(`${SEQUENCES} sequences of ${LENGTH} syscalls, 25% with an injected ENOMEM, keep every property`, async () => {
    const failures: string[] = [];
    let steps = 0;
    let enomems = 0;
    const kinds = new Set<string>();
    for (let seed = 1; seed <= SEQUENCES; seed++) {
      if (seed % 100 === 0) await yieldToEventLoop();
      const o = randomRun(seed, LENGTH, 0.25);
      steps += o.trace.length;
      for (const op of o.trace) {
        kinds.add(op.kind);
        if (op.enomem > 0) enomems++;
      }
      if (o.failure) failures.push(report(seed, o));
      if (failures.length >= 5) break;
    }
    expect(failures, failures.join('\n\n')).toEqual([]);
    // The sequences really exercise the model.
    expect(steps).toBeGreaterThan(SEQUENCES * 10);
    expect(enomems).toBeGreaterThan(steps / 10);
    expect([...kinds].sort()).toEqual([...OP_KINDS].sort());
  });

  it('sequences with no ENOMEM keep every property too (longer runs)', async () => {
    const failures: string[] = [];
    for (let seed = 10_001; seed <= 10_600; seed++) {
      if (seed % 50 === 0) await yieldToEventLoop();
      const o = randomRun(seed, 60, 0);
      if (o.failure) failures.push(report(seed, o));
      if (failures.length >= 5) break;
    }
    expect(failures, failures.join('\n\n')).toEqual([]);
  });

  it('a trace replays through its printed form to the same state (parseAction/formatOp/encode)', () => {
    for (let seed = 500; seed < 520; seed++) {
      const o = randomRun(seed, 25, 0.25);
      let s = model.initial();
      for (const op of o.trace) {
        const text = formatOp(op);
        const parsed = model.parseAction(s, text);
        expect(parsed, text).toEqual(op);
        s = model.next(s, parsed);
      }
      expect(Array.from(model.encode(s))).toEqual(Array.from(model.encode(o.final)));
      expect(s).toEqual(o.final);
    }
  });

  it('is deterministic per seed', () => {
    const a = randomRun(42, 25, 0.25);
    const b = randomRun(42, 25, 0.25);
    expect(a.trace.map(formatOp)).toEqual(b.trace.map(formatOp));
    expect(a.final).toEqual(b.final);
  });
});

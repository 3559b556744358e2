import { describe, expect, it } from 'vitest';
import { checkProperties, ParseError, type Model, type Property } from '../src/engine/model.ts';
import { fingerprint, fingerprintHex, fingerprintInto } from '../src/engine/hash.ts';
import { VisitedSet } from '../src/engine/visited.ts';
import { ParentLinks } from '../src/engine/parents.ts';
import { explore, replay, replayTexts, stateFingerprint } from '../src/engine/explorer.ts';
import { toyModel, TOY_PROPERTIES, type Counters, type ToyAction } from './toy-model.ts';

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return (r ^ (r >>> 14)) >>> 0;
  };
}

describe('hash', () => {
  it('is deterministic and prints 16 hex digits', () => {
    const w = Int32Array.of(1, 2, 3, -7);
    expect(fingerprint(w)).toEqual(fingerprint(Int32Array.of(1, 2, 3, -7)));
    const [h, l] = fingerprint(w);
    expect(fingerprintHex(h, l)).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprintHex(0, 1)).toBe('0000000000000001');
    expect(fingerprintHex(0xffffffff, 0)).toBe('ffffffff00000000');
  });

  it('mixes in the length and the word order', () => {
    const hex = (a: number[]) => fingerprintHex(...fingerprint(Int32Array.from(a)));
    expect(hex([])).not.toBe(hex([0]));
    expect(hex([0])).not.toBe(hex([0, 0]));
    expect(hex([1, 2])).not.toBe(hex([2, 1]));
  });

  it('has no collision and balanced bits over 200k structured inputs', () => {
    // Small, similar encodings (like real states) are the hard case for a weak hash.
    const seen = new Set<string>();
    const out = new Uint32Array(2);
    const ones = new Array<number>(64).fill(0);
    let n = 0;
    for (let x = 0; x < 450; x++) {
      for (let y = 0; y < 450; y++) {
        fingerprintInto(Int32Array.of(x, y, 0, 1), out);
        seen.add(fingerprintHex(out[0]!, out[1]!));
        for (let b = 0; b < 32; b++) {
          ones[b]! += (out[0]! >>> b) & 1;
          ones[32 + b]! += (out[1]! >>> b) & 1;
        }
        n++;
      }
    }
    expect(seen.size).toBe(n);
    // Each output bit is set about half the time (6 sigma bound).
    const sigma = Math.sqrt(n) / 2;
    for (const c of ones) expect(Math.abs(c - n / 2)).toBeLessThan(6 * sigma);
    // Each half alone is collision-free here too (lanes are not degenerate).
    const his = new Set<number>();
    const los = new Set<number>();
    for (let x = 0; x < 300; x++) {
      for (let y = 0; y < 300; y++) {
        fingerprintInto(Int32Array.of(x, y), out);
        his.add(out[0]!);
        los.add(out[1]!);
      }
    }
    // Birthday bound for 90k values in 2^32: ~1 expected collision per lane.
    expect(his.size).toBeGreaterThan(90_000 - 10);
    expect(los.size).toBeGreaterThan(90_000 - 10);
  });
});

describe('visited set', () => {
  it('(f) grows past its initial capacity without losing or duplicating entries', () => {
    const set = new VisitedSet(16);
    const next = rng(42);
    const N = 100_000;
    const his = new Uint32Array(N);
    const los = new Uint32Array(N);
    const unique = new Set<string>();
    for (let i = 0; i < N; i++) {
      his[i] = next();
      los[i] = next();
      unique.add(`${his[i]}:${los[i]}`);
    }
    expect(unique.size).toBe(N); // the generator itself produced no duplicate
    // One expect per loop, not per entry: 1e5 expect calls would dominate the run time.
    let notNew = 0;
    for (let i = 0; i < N; i++) if (!set.insert(his[i]!, los[i]!)) notNew++;
    expect(notNew).toBe(0);
    expect(set.size).toBe(N);
    expect(set.capacity).toBeGreaterThan(16);
    expect(set.size / set.capacity).toBeLessThanOrEqual(0.75);
    // Everything is still there, and inserting again adds nothing.
    let wrong = 0;
    for (let i = 0; i < N; i++) {
      if (!set.has(his[i]!, los[i]!)) wrong++;
      if (set.insert(his[i]!, los[i]!)) wrong++;
    }
    expect(wrong).toBe(0);
    expect(set.size).toBe(N);
    let absent = 0;
    for (let i = 0; i < 1000; i++) {
      const h = next();
      const l = next();
      if (!unique.has(`${h}:${l}`) && !set.has(h, l)) absent++;
    }
    expect(absent).toBe(1000);
    expect(set.bytes).toBe(set.capacity * 8);
    expect(set.bytesPerState).toBeCloseTo(set.bytes / N);
  });

  it('stores the reserved fingerprint 0/0 (as 0/1) and treats signed halves as uint32', () => {
    const set = new VisitedSet();
    expect(set.insert(0, 0)).toBe(true);
    expect(set.insert(0, 0)).toBe(false);
    expect(set.has(0, 0)).toBe(true);
    expect(set.insert(-1, -2)).toBe(true);
    expect(set.has(0xffffffff, 0xfffffffe)).toBe(true);
    expect(set.size).toBe(2);
  });
});

describe('parent links', () => {
  it('rebuilds a path through growth', () => {
    const links = new ParentLinks(16);
    links.push(-1, -1);
    for (let i = 1; i < 100; i++) links.push(i - 1, i % 3);
    expect(links.length).toBe(100);
    expect(links.path(0)).toEqual([]);
    expect(links.path(4)).toEqual([1, 2, 0, 1]);
    expect(links.path(99)).toHaveLength(99);
    expect(() => links.path(100)).toThrow(RangeError);
  });
});

const kinds = (xs: readonly ToyAction[]) => xs.map((a) => a.kind);

describe('explore', () => {
  it('(a)(b) finds the planted bug at its shortest depth, with a trace that replays to it', () => {
    const model = toyModel();
    const r = explore(model, { depth: 10 });
    expect(r.outcome).toBe('violation');
    expect(r.violations).toHaveLength(1);
    const v = r.violations[0]!;
    expect(v.property).toBe('no-0-4');
    expect(v.depth).toBe(4);
    expect(v.trace).toHaveLength(4);
    // Deterministic tie-breaking: BFS in actions order reaches (4, 0) first.
    expect(v.traceText).toEqual(['inc-a', 'inc-a', 'inc-a', 'inc-a']);
    expect(v.state).toEqual({ a: 4, b: 0 });
    expect(v.detail).toBe('a=4 b=0');
    // Replaying the actions (not trusting v.state) reaches a violating state.
    let s = model.initial();
    for (const a of v.trace) {
      expect(kinds(model.actions(s))).toContain(a.kind);
      s = model.next(s, a);
    }
    expect(checkProperties(model, s).map((x) => x.property)).toEqual(['no-0-4']);
    expect(stateFingerprint(model, s)).toBe(v.fingerprint);
    expect(replay(model, model.initial(), v.traceIndices).states.at(-1)).toEqual(s);
    expect(replayTexts(model, model.initial(), v.traceText).states.at(-1)).toEqual(s);
    // Stopped at the first violating state: level 4 is partial.
    expect(r.levelSizes.slice(0, 4)).toEqual([1, 1, 2, 2]);
    expect(r.levelSizes[4]).toBe(1);
    expect(r.distinct).toBe(7);
    expect(v.stateIndex).toBe(6);
  });

  it('reports every property violated by the first violating state, each once', () => {
    const sum4: Property<Counters> = {
      id: 'sum-not-4', description: 'a + b != 4', rule: 'toy', when: 'always',
      check: (s) => (s.a + s.b === 4 ? ['sum is 4', 'again'] : []),
    };
    const model: Model<Counters, ToyAction> = { ...toyModel(), properties: [...TOY_PROPERTIES, sum4] };
    const r = explore(model, { depth: 10 });
    expect(r.violations.map((v) => [v.property, v.depth])).toEqual([['no-0-4', 4], ['sum-not-4', 4]]);
    expect(r.violations[1]!.details).toEqual(['sum is 4', 'again']);
    expect(r.violations[0]!.stateIndex).toBe(r.violations[1]!.stateIndex);
  });

  it('(c)(d) counts distinct states per level and merges symmetric states', () => {
    const sym = explore(toyModel({ max: 2, properties: false }), { depth: 10 });
    // {a,b} multisets over 0..2 by depth a+b: {0,0} | {0,1} | {0,2},{1,1} | {1,2} | {2,2}
    expect(sym.levelSizes).toEqual([1, 1, 2, 1, 1]);
    expect(sym.distinct).toBe(6);
    const asym = explore(toyModel({ max: 2, symmetric: false, properties: false }), { depth: 10 });
    // ordered pairs over 0..2 by depth a+b
    expect(asym.levelSizes).toEqual([1, 2, 3, 2, 1]);
    expect(asym.distinct).toBe(9);
    // Symmetry must not change what is reachable, only merge mirror images.
    const big = explore(toyModel({ max: 6, properties: false }), { depth: 20 });
    const bigAsym = explore(toyModel({ max: 6, symmetric: false, properties: false }), { depth: 20 });
    expect(big.distinct).toBe((7 * 8) / 2);
    expect(bigAsym.distinct).toBe(49);
  });

  it('counts coverage per action kind and reports kinds that never fired', () => {
    const r = explore(toyModel({ max: 2, properties: false }), { depth: 10 });
    expect(r.coverage).toEqual({
      'inc-a': { fired: 3, newStates: 2 },
      'inc-b': { fired: 5, newStates: 3 },
      swap: { fired: 3, newStates: 0 },
      reset: { fired: 0, newStates: 0 },
    });
    expect(r.generated).toBe(11);
    expect(r.neverFired).toEqual(['reset']);
    expect(r.visitedBytesPerState).toBeGreaterThan(0);
    expect(r.collisionProbability).toBeCloseTo(36 / 2 ** 65, 30);
  });

  it('(e) with stopAtFirst false keeps one shortest violation per property', () => {
    const model = toyModel();
    const r = explore(model, { depth: 20, stopAtFirst: false });
    expect(r.outcome).toBe('violation');
    expect(r.exhausted).toBe(true);
    expect(r.violations.map((v) => [v.property, v.depth])).toEqual([
      ['no-0-4', 4],
      ['no-2-3', 5],
      ['not-finished', 8],
    ]);
    for (const v of r.violations) {
      expect(v.trace).toHaveLength(v.depth);
      const end = replay(model, model.initial(), v.traceIndices).states.at(-1)!;
      expect(checkProperties(model, end).map((x) => x.property)).toContain(v.property);
    }
    expect(r.violations[1]!.details).toEqual(['a=3 b=2', 'second detail line']);
    // It kept searching: the whole space was explored.
    expect(r.distinct).toBe(15);
    expect(r.levelSizes).toEqual([1, 1, 2, 2, 3, 2, 2, 1, 1]);
  });

  it('(g) distinguishes complete from depth-reached', () => {
    const model = toyModel({ max: 2, properties: false });
    const shallow = explore(model, { depth: 4 });
    expect(shallow.outcome).toBe('depth-reached');
    expect(shallow.exhausted).toBe(false);
    expect(shallow.depthReached).toBe(4);
    const deep = explore(model, { depth: 5 });
    expect(deep.outcome).toBe('complete');
    expect(deep.exhausted).toBe(true);
    expect(deep.depthReached).toBe(4);
    const zero = explore(model, { depth: 0 });
    expect(zero.outcome).toBe('depth-reached');
    expect(zero.levelSizes).toEqual([1]);
    expect(zero.generated).toBe(0);
  });

  it('(h) shouldStop interrupts cleanly', () => {
    const now = explore(toyModel({ max: 50 }), { depth: 200, shouldStop: () => true });
    expect(now.outcome).toBe('interrupted');
    expect(now.distinct).toBe(1);
    let polls = 0;
    const model = toyModel({ max: 200, properties: false });
    const full = explore(model, { depth: 1000 });
    const later = explore(model, { depth: 1000, shouldStop: () => ++polls > 40 });
    expect(later.outcome).toBe('interrupted');
    expect(later.distinct).toBeGreaterThan(1);
    expect(later.distinct).toBeLessThan(full.distinct);
    expect(later.levelSizes.reduce((x, y) => x + y, 0)).toBe(later.distinct);
  });

  it('is deterministic across runs', () => {
    const run = () => explore(toyModel({ max: 30 }), { depth: 100, stopAtFirst: false });
    const a = run();
    const b = run();
    expect(b.levelSizes).toEqual(a.levelSizes);
    expect(b.violations.map((v) => [v.fingerprint, v.stateIndex, v.traceText])).toEqual(
      a.violations.map((v) => [v.fingerprint, v.stateIndex, v.traceText]),
    );
  });

  it('starts from a prefix state and reports absolute depths', () => {
    const model = toyModel();
    const from = replayTexts(model, model.initial(), ['inc-a', 'inc-a', 'inc-a']).states.at(-1)!;
    const r = explore(model, { depth: 10, from, fromPrefix: 3, stopAtFirst: false });
    const v = r.violations.find((x) => x.property === 'no-0-4')!;
    expect(v.depth).toBe(4);
    expect(v.traceText).toEqual(['inc-a']);
    expect(r.violations.find((x) => x.property === 'no-2-3')!.traceText).toEqual(['inc-b', 'inc-b']);
    // The prefix uses part of the depth budget.
    const short = explore(model, { depth: 4, from, fromPrefix: 3, stopAtFirst: false });
    expect(short.depthReached).toBe(4);
    expect(short.levelSizes).toHaveLength(2);
    expect(() => explore(model, { depth: 2, from, fromPrefix: 3 })).toThrow(ParseError);
    expect(() => explore(model, { depth: -1 })).toThrow(ParseError);
  });

  it('reports progress', () => {
    const seen: number[] = [];
    explore(toyModel({ max: 60, properties: false }), {
      depth: 1000,
      progressMs: 0,
      onProgress: (p) => {
        expect(p.generated).toBeGreaterThanOrEqual(seen.at(-1) ?? 0);
        expect(p.distinct).toBeGreaterThan(0);
        expect(p.elapsedMs).toBeGreaterThanOrEqual(0);
        expect(p.queue).toBeGreaterThanOrEqual(0);
        expect(p.heapMb).toBeGreaterThan(0);
        seen.push(p.generated);
      },
    });
    expect(seen.length).toBeGreaterThan(1);
  });
});

describe('replayTexts', () => {
  it('replays operation texts and rejects unparsable ones', () => {
    const model = toyModel();
    const r = replayTexts(model, model.initial(), ['inc-a', ' inc-a', 'swap']);
    expect(r.states).toEqual([{ a: 0, b: 0 }, { a: 1, b: 0 }, { a: 2, b: 0 }, { a: 0, b: 2 }]);
    expect(kinds(r.actions)).toEqual(['inc-a', 'inc-a', 'swap']);
    expect(r.indices).toEqual([0, 0, 2]);
    expect(() => replayTexts(model, model.initial(), ['inc-a', 'jump'])).toThrow(/step 2 "jump": unknown operation/);
    // A parsable action outside the enabled list is applied: the model's
    // parseAction is the one to refuse what cannot be issued.
    expect(replayTexts(model, model.initial(), ['swap']).indices).toEqual([-1]);
    expect(() => replay(model, model.initial(), [0, 7])).toThrow(ParseError);
  });
});

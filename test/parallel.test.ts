// The parallel explorer (src/engine/parallel.ts) against the single-thread
// one: for 1, 2 and 4 workers the same distinct states per level, totals,
// coverage, violations and traces; checkpoints resume to the counts of an
// uninterrupted run. Untimed, small bounds.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { setAutoFreeze } from 'immer';
import { explore, type ExploreResult } from '../src/engine/explorer.ts';
import { exploreParallel } from '../src/engine/parallel.ts';
import { CheckpointError, readCheckpoint } from '../src/engine/checkpoint.ts';
import { FULL, LevelTable } from '../src/engine/leveltable.ts';
import type { ModelSpec } from '../src/engine/spec.ts';
import { buildMmModel, mmModelSpec, type MmSpec } from '../src/cli/model-spec.ts';
import { toyModel, type ToyOptions } from './toy-model.ts';

setAutoFreeze(false);
const tmp = mkdtempSync(join(tmpdir(), 'mmcheck-par-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const toySpec = (o: ToyOptions): ModelSpec => ({ module: new URL('./toy-model.ts', import.meta.url).href, export: 'toyModel', args: o });

/** What must not depend on the number of workers. */
function summary<A, S>(r: ExploreResult<A, S>) {
  return {
    outcome: r.outcome,
    exhausted: r.exhausted,
    generated: r.generated,
    distinct: r.distinct,
    depthReached: r.depthReached,
    levelSizes: r.levelSizes,
    coverage: r.coverage,
    neverFired: r.neverFired,
    violations: r.violations.map((v) => ({ property: v.property, details: v.details, depth: v.depth, stateIndex: v.stateIndex, fingerprint: v.fingerprint, trace: v.traceText })),
  };
}

describe('parallel explorer: results do not depend on the number of workers', () => {
  it('toy model, stop at first and --continue, with level-table and visited-set growth', async () => {
    for (const stopAtFirst of [true, false]) {
      const model = toyModel({ max: 6 });
      const want = summary(explore(model, { depth: 12, stopAtFirst }));
      for (const workers of [1, 2, 4]) {
        const got = await exploreParallel(model, { depth: 12, stopAtFirst, workers, spec: toySpec({ max: 6 }), initialCapacity: 16, levelTableSize: 1 });
        expect(summary(got), `workers ${workers}, stopAtFirst ${stopAtFirst}`).toEqual(want);
      }
    }
  });

  it('mm model, procs 2, pages 3, max-len 1, depth 4', async () => {
    const spec: MmSpec = { variant: 'mainline', bounds: { procs: 2, pages: 3, maxLen: 1 } };
    const model = await buildMmModel(spec);
    const want = summary(explore(model, { depth: 4, stopAtFirst: false }));
    expect(want.levelSizes).toEqual([1, 5, 18, 79, 445]);
    for (const workers of [1, 2, 4]) {
      const got = await exploreParallel(model, { depth: 4, stopAtFirst: false, workers, spec: mmModelSpec(spec), levelTableSize: 64 });
      expect(summary(got), `workers ${workers}`).toEqual(want);
      expect(got.collisionProbability).toBeCloseTo((548 * 548) / 2 ** 65, 20);
    }
  });

  it('b8e-put-root-first: the same violation and trace as the single-thread search', async () => {
    const spec: MmSpec = { variant: 'b8e-put-root-first', bounds: { procs: 3, pages: 1, maxLen: 1, ops: ['mmap', 'fault', 'fork', 'exit'] } };
    const model = await buildMmModel(spec);
    const want = summary(explore(model, { depth: 7 }));
    expect(want.violations.map((v) => v.property)).toEqual(['no-use-after-free']);
    for (const workers of [1, 2, 4]) {
      const got = await exploreParallel(model, { depth: 7, workers, spec: mmModelSpec(spec) });
      expect(summary(got), `workers ${workers}`).toEqual(want);
    }
  });
});

describe('parallel explorer: checkpoints', () => {
  const spec: MmSpec = { variant: 'mainline', bounds: { procs: 2, pages: 3, maxLen: 1 } };

  it('a depth-bounded run resumes to the counts of an uninterrupted one', async () => {
    const model = await buildMmModel(spec);
    const want = summary(explore(model, { depth: 5, stopAtFirst: false }));
    const path = join(tmp, 'bounded.ckpt');
    const first = await exploreParallel(model, { depth: 3, stopAtFirst: false, workers: 2, spec: mmModelSpec(spec), checkpoint: { path, everyMs: 1e9, meta: { what: 'test' } } });
    expect(first.outcome).toBe('depth-reached');
    expect(first.checkpoint).toBe(path);
    const c = readCheckpoint(path);
    expect(c.meta).toEqual({ what: 'test' });
    expect(c.level).toBe(3);
    const rest = await exploreParallel(model, { depth: 5, workers: 1, spec: mmModelSpec(spec), resume: c });
    expect(summary(rest)).toEqual(want);
  });

  it('an interrupted run keeps its last level boundary and resumes exactly', async () => {
    const model = toyModel({ max: 8 });
    const want = summary(explore(model, { depth: 14, stopAtFirst: false }));
    const path = join(tmp, 'stopped.ckpt');
    let polls = 0;
    const stopped = await exploreParallel(model, {
      depth: 14,
      stopAtFirst: false,
      workers: 2,
      spec: toySpec({ max: 8 }),
      checkpoint: { path, everyMs: 1e9, meta: null },
      shouldStop: () => ++polls > 12,
    });
    expect(stopped.outcome).toBe('interrupted');
    const c = readCheckpoint(path);
    expect(c.level).toBeGreaterThan(0);
    expect(c.level).toBeLessThan(14);
    const rest = await exploreParallel(model, { depth: 14, workers: 2, spec: toySpec({ max: 8 }), resume: c });
    expect(summary(rest)).toEqual(want);
  });

  it('a stop while a level is half merged rolls it back: each such stop resumes exactly', async () => {
    // With the level table, batches are merged as they arrive
    // (src/engine/levelmerge.ts): a stop inside a level must undo the links,
    // violations and counters merged so far, or the checkpoint would not be
    // the level boundary it claims to be.
    const model = await buildMmModel(spec);
    const want = summary(explore(model, { depth: 5, stopAtFirst: false }));
    for (const level of [1, 2, 3, 4]) {
      const path = join(tmp, `mid-${level}.ckpt`);
      // Stop at the first poll after some successors of the level were delivered.
      let atStart: number | undefined;
      let stop = false;
      const stopped = await exploreParallel(model, {
        depth: 5,
        stopAtFirst: false,
        workers: 2,
        spec: mmModelSpec(spec),
        checkpoint: { path, everyMs: 1e9, meta: null },
        shouldStop: () => stop,
        progressMs: 0,
        onProgress: (p) => {
          if (p.depth !== level) return;
          atStart ??= p.generated;
          if (p.generated > atStart) stop = true;
        },
      });
      expect(stopped.outcome, `level ${level}`).toBe('interrupted');
      const c = readCheckpoint(path);
      expect(c.level, `level ${level}`).toBe(level);
      expect(c.generated).toBe(atStart);
      const rest = await exploreParallel(model, { depth: 5, workers: 1, spec: mmModelSpec(spec), resume: c });
      expect(summary(rest), `level ${level}`).toEqual(want);
    }
  });

  it('--max-memory stops cleanly at a level boundary, keeping what was found', async () => {
    const model = toyModel({ max: 6 });
    const r = await exploreParallel(model, { depth: 12, stopAtFirst: false, workers: 1, spec: toySpec({ max: 6 }), maxMemoryMb: 1 });
    expect(r.outcome).toBe('interrupted');
    expect(r.memoryLimit).toMatch(/memory limit of 1 MB/);
    expect(r.distinct).toBe(1);
  });
});

describe('level table and checkpoint files', () => {
  it('keeps the smallest rank per fingerprint, through growth; take() hands each out once', () => {
    let t = LevelTable.create(4);
    const fps: [number, number][] = Array.from({ length: 200 }, (_, i) => [i * 2654435761, (i * 40503) ^ 0x5bd1e995]);
    for (let pass = 0; pass < 2; pass++)
      for (let i = 0; i < fps.length; i++) {
        const [hi, lo] = fps[i]!;
        let before = t.offer(hi, lo, 1000 - i + pass);
        if (before === FULL) {
          t = t.grow();
          before = t.offer(hi, lo, 1000 - i + pass);
        }
        expect(before).not.toBe(FULL);
      }
    expect(t.size).toBe(200);
    for (let i = 0; i < fps.length; i++) {
      const [hi, lo] = fps[i]!;
      expect(t.rankOf(hi, lo)).toBe(1000 - i);
      expect(t.take(hi, lo, 1001 - i)).toBe(false);
      expect(t.take(hi, lo, 1000 - i)).toBe(true);
      expect(t.take(hi, lo, 1000 - i)).toBe(false);
    }
  });

  it('a file that is not a checkpoint, or a truncated one, is refused', () => {
    const bad = join(tmp, 'bad.ckpt');
    writeFileSync(bad, 'hello');
    expect(() => readCheckpoint(bad)).toThrow(CheckpointError);
    expect(() => readCheckpoint(join(tmp, 'missing.ckpt'))).toThrow(/cannot read/);
  });
});

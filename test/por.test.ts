// Partial-order reduction (issue 17, item 6; models/mm/por.ts, the cycle
// proviso in src/engine/model.ts): it finds what the full search finds, on
// every corpus bug at lock granularity and on the deadlock fixtures, and the
// independence it rests on holds: every action writes only records of its
// own component.
import { describe, expect, it } from 'vitest';
import { createMmModel, type Bounds, type MmModel } from '../models/mm/model.ts';
import { loadModel } from '../models/variants/load.ts';
import { componentMap, type RecordTable } from '../models/mm/por.ts';
import { forEachThread, type State } from '../models/mm/state.ts';
import { BUG_CORPUS, type BugEntry } from '../models/variants/corpus/index.ts';
import { explore, replayTexts, stateFingerprint } from '../src/engine/explorer.ts';
import { exploreParallel } from '../src/engine/parallel.ts';
import { searchModel } from '../src/engine/model.ts';
import { ALL_PROPERTIES } from '../properties/index.ts';
import { mmModelSpec } from '../src/cli/model-spec.ts';
import { exploreOffThread } from './explore-off-thread.ts';
import { runCli } from './run-cli.ts';
import { splitOps } from '../models/mm/ops.ts';
import type { Property } from '../src/engine/model.ts';

/** Three unrelated process families can form; walkers and a second thread race them. */
const FAMILIES: Partial<Bounds> = { granularity: 'lock', procs: 3, pages: 2, maxLen: 1, walkers: 1 };

const TABLES: RecordTable[] = ['mms', 'vmas', 'anonVmas', 'avcs', 'folios'];

/**
 * Breadth-first over the search model (the copy-on-write transitions, so
 * an unchanged record is the parent's own object), calling visit on every
 * transition of up to `limit` states.
 */
function eachTransition(m: MmModel, limit: number, visit: (s: State, op: ReturnType<MmModel['actions']>[number], t: State) => void): number {
  const inner = searchModel(m);
  const seen = new Set<string>();
  let frontier = [inner.initial()];
  let n = 0;
  while (frontier.length > 0 && n < limit) {
    const next: State[] = [];
    for (const s of frontier) {
      if (n === limit) break;
      n++;
      for (const op of inner.actions(s)) {
        const t = inner.next(s, op);
        visit(s, op, t);
        const key = stateFingerprint(inner, t);
        if (!seen.has(key)) {
          seen.add(key);
          next.push(t);
        }
      }
    }
    frontier = next;
  }
  return n;
}

describe('the independence partial-order reduction rests on', () => {
  it('every action writes only records and threads of the component of its actor (or new ones), and only issues touch the budgets', () => {
    const m = createMmModel({ bounds: { ...FAMILIES, threads: 2, ops: ['mmap', 'fault', 'fork', 'munmap', 'mremap', 'exit'] } });
    const bad: string[] = [];
    let checked = 0;
    const states = eachTransition(m, 4000, (s, op, t) => {
      const comps = componentMap(s);
      const actor = comps.action(op);
      const what = `${m.formatAction(s, op)}`;
      if (actor < 0) bad.push(`${what}: no component`);
      for (const table of TABLES) {
        const before = s[table] as Record<number, unknown>;
        const after = t[table] as Record<number, unknown>;
        for (const key in before) {
          if (after[key] === before[key]) continue;
          checked++;
          const c = comps.record(table, Number(key));
          if (c !== actor) bad.push(`${what} writes ${table}[${key}] of another component`);
        }
      }
      forEachThread(s, (x) => {
        const key = Object.keys(s.threads).find((k) => s.threads[Number(k)] === x)!;
        if (t.threads[Number(key)] !== x && comps.thread(x.id) !== actor) bad.push(`${what} changes thread ${x.id} of another component`);
      });
      if (op.kind === 'step' && JSON.stringify(t.budgets) !== JSON.stringify(s.budgets)) bad.push(`${what}: a step changes the budgets`);
    });
    expect(states).toBe(4000);
    expect(checked).toBeGreaterThan(1000);
    expect([...new Set(bad)].slice(0, 5)).toEqual([]);
  });
});

/** Two lock-granularity searches of the same bounds, without and with the reduction. */
async function bothWays(bounds: Partial<Bounds>, depth: number, variant = 'mainline', only?: string[], fromTexts: string[] = []) {
  const job = { variant, depth, fromTexts, ...(only ? { only } : {}) };
  const off = await exploreOffThread({ ...job, bounds: { ...bounds, granularity: 'lock' } });
  const on = await exploreOffThread({ ...job, bounds: { ...bounds, granularity: 'lock', por: true } });
  return { off, on };
}

/** A corpus entry's prefix as lock-granularity actions: each syscall followed by the steps that finish it. */
function lockPrefix(e: BugEntry): string[] {
  if (e.from === undefined) return [];
  const texts = splitOps(e.from);
  if (e.bounds.granularity === 'lock') return texts;
  const m = createMmModel({ variant: e.buggy, bounds: { ...e.bounds, granularity: 'lock' } });
  let s = m.initial();
  const out: string[] = [];
  const apply = (text: string): void => {
    s = replayTexts(m, s, [text]).states.at(-1)!;
    out.push(text);
  };
  for (const text of texts) {
    apply(text);
    for (let step = m.actions(s).find((a) => a.kind === 'step'); step !== undefined; step = m.actions(s).find((a) => a.kind === 'step')) apply(m.formatAction(s, step));
  }
  return out;
}

/**
 * The depth at which each corpus bug shows at lock granularity, found with
 * the reduction off (a syscall-granularity entry needs the steps of its
 * multi-step syscalls: fork, exit, mremap, munmap). B2 is left out: from its
 * prefix, with four processes, the lock-granularity search to its depth
 * takes minutes, beyond a test's budget.
 */
const LOCK_DEPTH: Record<string, number> = { B1a: 7, seed001: 7, B3b: 3, seed000: 4, B5a: 11, VL1: 7, B8e: 12, B4: 9, UV1: 5, UV2: 4 };

describe('partial-order reduction finds what the full search finds', () => {
  for (const e of BUG_CORPUS) {
    if (e.id === 'B2') continue;
    it(`${e.id}: the same violation of ${e.property}, at the same depth`, async () => {
      const { off, on } = await bothWays(e.bounds, LOCK_DEPTH[e.id]!, e.buggy, [e.property], lockPrefix(e));
      expect(off.outcome).toBe('violation');
      expect(on.outcome).toBe('violation');
      expect(on.violations.map((v) => [v.property, v.depth])).toEqual(off.violations.map((v) => [v.property, v.depth]));
      expect(on.distinct).toBeLessThanOrEqual(off.distinct);
    });
  }

  it('every corpus entry but B2 is in the table above (a new entry must be added to it)', () => {
    expect(BUG_CORPUS.filter((e) => e.id !== 'B2' && LOCK_DEPTH[e.id] === undefined).map((e) => e.id)).toEqual([]);
  });

  it('the deadlock fixtures deadlock with the reduction on, beside a second process family it could defer', async () => {
    const generated = [0, 0];
    for (const [fixture, bounds, depth] of [
      ['test/fixtures/unmap-rereads-mmap-lock.ts', { threads: 2, ops: ['mmap', 'munmap', 'fork'], pages: 3, maxLen: 1, procs: 2 }, 5],
      ['test/fixtures/move-ptes-rmap-lock-under-ptl.ts', { pages: 3, maxLen: 1, ops: ['mmap', 'fault', 'mremap', 'fork'], walkers: 1, procs: 2 }, 7],
      ['test/fixtures/unmap-takes-mmap-lock.ts', { pages: 3, maxLen: 1, ops: ['mmap', 'fault', 'mremap', 'fork'], walkers: 1, procs: 2 }, 8],
    ] as const satisfies readonly (readonly [string, Partial<Bounds>, number])[]) {
      const loaded = await loadModel(fixture);
      const both = [false, true].map((por) => {
        const m = createMmModel({ name: loaded.name, kernel: loaded.kernel, bounds: { ...bounds, granularity: 'lock', por }, properties: ALL_PROPERTIES.filter((p) => p.id === 'no-deadlock') });
        return explore(m, { depth });
      });
      expect(both[0]!.outcome, fixture).toBe('violation');
      generated[0] += both[0]!.generated;
      generated[1] += both[1]!.generated;
      expect(both[1]!.violations.map((v) => [v.property, v.depth, v.detail.split(':')[0]]), fixture).toEqual(both[0]!.violations.map((v) => [v.property, v.depth, v.detail.split(':')[0]]));
    }
    // The reduction did defer something on the way.
    expect(generated[1]).toBeLessThan(generated[0]!);
  });
});

describe('one step alone while its thread holds the mmap_lock (por.ts mmapHolderAlone)', () => {
  it('reaches every quiescent state of two threads of one process that the full search reaches, through fewer states', () => {
    // The component rule alone saves under 2 % here (a fork joins both processes in one component).
    const bounds: Partial<Bounds> = { granularity: 'lock', procs: 2, pages: 2, maxLen: 1, threads: 2, walkers: 0 };
    const runs = [false, true].map((por) => {
      const quiescent = new Set<string>();
      // Set below, before the search asks the property anything.
      let model!: MmModel;
      const record: Property<State> = {
        id: 'record-quiescent',
        description: 'test only: records every quiescent state it is asked about',
        rule: 'none',
        when: 'quiescent',
        check(s) {
          quiescent.add(stateFingerprint(model, s));
          return [];
        },
      };
      model = createMmModel({ bounds: { ...bounds, por }, properties: [record] });
      const r = explore(model, { depth: 7, stopAtFirst: false });
      return { r, quiescent };
    });
    const [off, on] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(off.quiescent.size).toBeGreaterThan(50);
    expect([...on.quiescent].sort()).toEqual([...off.quiescent].sort());
    expect(on.r.distinct).toBeLessThan(off.r.distinct * 0.9);
  });

  it('gives the same counts on one thread and on the pool, whose workers check the same diamonds', async () => {
    const bounds: Partial<Bounds> = { granularity: 'lock', procs: 2, pages: 2, maxLen: 1, threads: 2, walkers: 1, por: true };
    const one = await exploreOffThread({ variant: 'mainline', depth: 6, fromTexts: [], bounds });
    const spec = { variant: 'mainline', bounds };
    const pool = await exploreParallel(createMmModel({ bounds }), { depth: 6, stopAtFirst: false, workers: 2, spec: mmModelSpec(spec) });
    expect([pool.distinct, pool.generated, pool.levelSizes]).toEqual([one.distinct, one.generated, one.levelSizes]);
  });
});

describe('the reduction, measured', () => {
  it('explores fewer states to a depth, with the same (no) violations, and the same counts on one thread and on the pool', async () => {
    const bounds: Partial<Bounds> = { ...FAMILIES, walkers: 0 };
    const { off, on } = await bothWays(bounds, 7);
    expect(on.violations).toEqual([]);
    expect(off.violations).toEqual([]);
    expect(on.distinct).toBeLessThan(off.distinct);
    const spec = { variant: 'mainline', bounds: { ...bounds, granularity: 'lock' as const, por: true } };
    const pool = await exploreParallel(createMmModel({ bounds: spec.bounds }), { depth: 7, stopAtFirst: false, workers: 2, spec: mmModelSpec(spec) });
    expect([pool.distinct, pool.generated, pool.levelSizes]).toEqual([on.distinct, on.generated, on.levelSizes]);
  });

  it('--por needs lock granularity: one line, exit 2', async () => {
    const r = await runCli(['check', '--por', '--depth', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--walkers, --threads, --no-reduce and --por need --granularity lock/);
  });
});

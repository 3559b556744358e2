// MREMAP_RELOCATE_ANON (RFC, seed 002; bug-corpus B4) as variants over
// mainline: each relocation path, the review's scenario, and exhaustive
// checks whose outcomes the issue note reports.
import { describe, expect, it } from 'vitest';
import { createMmModel, type Bounds } from '../models/mm/model.ts';
import { threadOf, type State } from '../models/mm/state.ts';
import { splitOps } from '../models/mm/ops.ts';
import { disabledLockPoints } from '../models/mm/sched.ts';
import { resolveKernel } from '../models/variants/registry.ts';
import '../models/variants/builtin.ts';
import { checkProperties } from '../src/engine/model.ts';
import { explore, replayTexts, stateFingerprint } from '../src/engine/explorer.ts';
import { stateToJson } from '../src/report/json.ts';
import { ALL_PROPERTIES } from '../properties/index.ts';

function run(variant: string, ops: string, bounds: Partial<Bounds> = { procs: 3, pages: 8, maxLen: 4 }) {
  const m = createMmModel({ name: variant, kernel: resolveKernel(variant), bounds });
  let s = m.initial();
  const states: State[] = [s];
  for (const t of ops.split(';')) {
    s = m.next(s, m.parseAction(s, t.trim()));
    states.push(s);
  }
  const all = checkProperties(m, s);
  return {
    s,
    m,
    states,
    // lock-discipline is asserted on its own below: the RFC takes the folio lock under the PTL whenever it relocates.
    violations: [...new Set(all.map((v) => v.property))].filter((p) => p !== 'lock-discipline'),
    lockErrors: all.filter((v) => v.property === 'lock-discipline').map((v) => v.detail),
  };
}

/** The model's records other than lockdep's. */
const notLockdep = (warnings: string[]) => warnings.filter((w) => !w.startsWith('lockdep:'));

const vmasOf = (s: State, mm: number) => s.mms[mm]!.vmas.map((id) => s.vmas[id]!);
const folioAt = (s: State, mm: number, page: number) => s.folios[s.mms[mm]!.ptes[page]!.folio]!;

describe('relocation paths', () => {
  it('mainline refuses the flag: -EINVAL, nothing moves', () => {
    const { s, violations } = run('mainline', 'P0 mmap 0 2; P0 fault 0 w; P0 mremap 0 2 4 2 maymove,fixed,relocate');
    expect(vmasOf(s, 0).map((v) => [v.start, v.end])).toEqual([[0, 2]]);
    expect(violations).toEqual([]);
  });

  it('relocate without maymove is -EINVAL in the RFC too', () => {
    const { s } = run('relocate-rfc-v2', 'P0 mmap 0 2; P0 fault 0 w; P0 mremap 0 2 4 2 relocate');
    expect(vmasOf(s, 0).map((v) => [v.start, v.end])).toEqual([[0, 2]]);
  });

  it('success: the new VMA gets pgoff = its address and a fresh anon_vma; folios get the new mapping and index', () => {
    const before = run('mainline', 'P0 mmap 0 2; P0 fault 0 w').s;
    const oldAnon = vmasOf(before, 0)[0]!.anonVma;
    const { s, violations } = run('relocate-rfc-v2', 'P0 mmap 0 2; P0 fault 0 w; P0 mremap 0 2 4 2 maymove,fixed,relocate');
    const [v] = vmasOf(s, 0);
    expect([v!.start, v!.end, v!.pgoff]).toEqual([4, 6, 4]);
    expect(v!.anonVma).not.toBe(oldAnon);
    expect(v!.chain).toHaveLength(1);
    const f = folioAt(s, 0, 4);
    expect([f.anonVma, f.index]).toEqual([v!.anonVma, 4]);
    expect(s.anonVmas[oldAnon]!.freed).toBe(true);
    expect(violations).toEqual([]);
  });

  it('a plain (unrelocated) move keeps the old pgoff, for comparison', () => {
    const { s } = run('relocate-rfc-v2', 'P0 mmap 0 2; P0 fault 0 w; P0 mremap 0 2 4 2 maymove,fixed');
    expect(vmasOf(s, 0)[0]!.pgoff).toBe(0);
  });

  it('merge instead: when the destination merges with a neighbour, nothing is relocated', () => {
    // Move page 0 back next to the rest of its VMA: the copy merges, so no relocation.
    const { s, violations } = run('relocate-rfc-v2', 'P0 mmap 0 3; P0 fault 0 w; P0 mremap 0 1 3 1 maymove,fixed; P0 mremap 3 1 0 1 maymove,fixed,relocate');
    expect(vmasOf(s, 0).map((v) => [v.start, v.end, v.pgoff])).toEqual([[0, 3, 0]]);
    expect(folioAt(s, 0, 0).index).toBe(0);
    expect(violations).toEqual([]);
  });

  it('relocation makes the moved VMA mergeable like an unfaulted one: it merges with an unfaulted neighbour', () => {
    const { s, violations } = run('relocate-rfc-v2', 'P0 mmap 0 1; P0 fault 0 w; P0 mmap 6 1; P0 mremap 0 1 5 1 maymove,fixed,relocate');
    expect(vmasOf(s, 0).map((v) => [v.start, v.end, v.pgoff])).toEqual([[5, 7, 5]]);
    expect(violations).toEqual([]);
  });

  it('pinned folio, RFC v2: skipped, so it keeps the old mapping and index and the rmap loses it', () => {
    const { s, violations, states } = run('relocate-rfc-v2', 'P0 mmap 0 2; P0 fault 0 w; P0 pin 0; P0 mremap 0 2 4 2 maymove,fixed,relocate');
    const f = folioAt(s, 0, 4);
    expect(f.index).toBe(0);
    expect(s.anonVmas[f.anonVma]!.freed).toBe(true);
    expect(violations).toEqual(expect.arrayContaining(['rmap-coverage', 'no-use-after-free']));
    expect(states).toHaveLength(5);
  });

  it('pinned folio, v3: the relocation falls back to a plain move', () => {
    const { s, violations } = run('relocate-v3', 'P0 mmap 0 2; P0 fault 0 w; P0 pin 0; P0 mremap 0 2 4 2 maymove,fixed,relocate');
    expect(vmasOf(s, 0)[0]!.pgoff).toBe(0);
    expect(folioAt(s, 0, 4).index).toBe(0);
    expect(violations).toEqual([]);
  });

  it('large folio: the relocation fails, is undone, the new VMA is unmapped and the move is retried without relocation', () => {
    const { s, violations } = run('relocate-rfc-v2', 'P0 mmap 0 2; P0 fault 0 w large; P0 mremap 0 2 4 2 maymove,fixed,relocate');
    const [v] = vmasOf(s, 0);
    expect([v!.start, v!.end, v!.pgoff]).toEqual([4, 6, 0]);
    const f = folioAt(s, 0, 4);
    expect([f.nrPages, f.index, f.mapcount]).toEqual([2, 0, 2]);
    expect(notLockdep(s.warnings)).toEqual([]);
    expect(violations).toEqual([]);
  });

  it('maybe-shared folio: children-only relocates a fork child, WARNs on the shared folio and skips it', () => {
    const { s, violations } = run('relocate-children-only', 'P0 mmap 0 1; P0 fault 0 w; P0 fork; P1 mremap 0 1 2 1 maymove,fixed,relocate');
    expect(s.warnings).toContain('relocate_anon_pte: folio_maybe_mapped_shared');
    expect(violations).toEqual(expect.arrayContaining(['kernel-asserts', 'rmap-coverage']));
  });
});

describe("the review's scenario: fork, fork again, relocate in the middle process", () => {
  const REVIEW = 'P0 mmap 0 1; P0 fault 0 w; P0 fork; P1 fault 0 w; P1 fork; P1 mremap 0 1 2 1 maymove,fixed,relocate';
  it('relocate-rfc-v2: the parents test refuses the fork child first; a plain move, no violation', () => {
    const { s, violations } = run('relocate-rfc-v2', REVIEW);
    expect(vmasOf(s, 1)[0]!.pgoff).toBe(0);
    expect(violations).toEqual([]);
  });
  it('relocate-children-only: num_children of the middle anon_vma is 1, so its shared folio is relocated around: broken', () => {
    const { s, violations } = run('relocate-children-only', REVIEW);
    const mid = run('mainline', 'P0 mmap 0 1; P0 fault 0 w; P0 fork; P1 fault 0 w; P1 fork').s;
    expect(mid.anonVmas[vmasOf(mid, 1)[0]!.anonVma]!.numChildren).toBe(1);
    expect(vmasOf(s, 1)[0]!.pgoff).toBe(2);
    expect(violations).toEqual(expect.arrayContaining(['rmap-coverage', 'kernel-asserts']));
  });
  it('relocate-v3: refused (fork child); no violation', () => {
    expect(run('relocate-v3', REVIEW).violations).toEqual([]);
  });
});

describe('the RFC takes the folio lock inside the PTL and the anon_vma write lock', () => {
  it('lock-discipline: a sleeping lock under a spinlock, and folio lock after anon_vma->rwsem against §6.1', () => {
    const { lockErrors } = run('relocate-rfc-v2', 'P0 mmap 0 2; P0 fault 0 w; P0 mremap 0 2 4 2 maymove,fixed,relocate');
    expect(lockErrors).toEqual([
      'folio lock of F0 taken while holding anon_vma->root->rwsem of A1 (order, §6.1)',
      'folio lock of F0 (a sleeping lock) taken under the spinlock PTE lock of P0',
    ]);
    expect(run('mainline', 'P0 mmap 0 2; P0 fault 0 w; P0 mremap 0 2 4 2 maymove,fixed').lockErrors).toEqual([]);
  });
});

describe('exhaustive checks (bounds that contain the review scenario)', () => {
  const bounds = (ops: Bounds['ops']): Partial<Bounds> => ({ procs: 3, pages: 2, maxLen: 1, ops, relocate: true });
  // Every property but lock-discipline, which the RFC breaks on every relocation (tested above).
  const properties = ALL_PROPERTIES.filter((p) => p.id !== 'lock-discipline');
  const check = (variant: string, b: Partial<Bounds>, depth: number) =>
    explore(createMmModel({ name: variant, kernel: resolveKernel(variant), bounds: b, properties }), { depth, stopAtFirst: false });

  it('relocate-rfc-v2 without pins: no violation at depth 6 (the num_children error is latent)', () => {
    const r = check('relocate-rfc-v2', bounds(['mmap', 'fault', 'fork', 'mremap', 'exit']), 6);
    expect(r.violations).toEqual([]);
    expect(r.distinct).toBeGreaterThan(1000);
  });
  it('relocate-rfc-v2 with pins: the skipped pinned folio breaks rmap-coverage at depth 4', () => {
    const r = check('relocate-rfc-v2', bounds(['mmap', 'fault', 'fork', 'mremap', 'exit', 'pin']), 5);
    const cov = r.violations.find((v) => v.property === 'rmap-coverage')!;
    expect(cov.depth).toBe(4);
    expect(cov.traceText).toEqual(['P0 mmap 0 1', 'P0 fault 0 w', 'P0 pin 0', 'P0 mremap 0 1 1 1 maymove,fixed,relocate']);
  });
  it('relocate-children-only: rmap-coverage broken at depth 4 (a fork child relocates)', () => {
    const r = check('relocate-children-only', bounds(['mmap', 'fault', 'fork', 'mremap', 'exit']), 5);
    expect(r.violations.find((v) => v.property === 'rmap-coverage')!.depth).toBe(4);
  });
  it('relocate-v3 with pins: no violation at depth 6', () => {
    expect(check('relocate-v3', bounds(['mmap', 'fault', 'fork', 'mremap', 'exit', 'pin']), 6).violations).toEqual([]);
  });
});


describe('at lock granularity the relocation is cut at each lock it takes (issue 17)', () => {
  const RELOCATE_VARIANTS = ['relocate-rfc-v2', 'relocate-children-only', 'relocate-v3'];
  const lockModel = (variant: string, b: Partial<Bounds>) => createMmModel({ name: variant, kernel: resolveKernel(variant), bounds: { granularity: 'lock', ...b } });
  const replay = (m: ReturnType<typeof lockModel>, ops: string) => replayTexts(m, m.initial(), splitOps(ops)).states.at(-1)!;
  /** Step P0 to the end of its syscall: the pc and the locks held at each lock point. */
  function stepThrough(m: ReturnType<typeof lockModel>, ops: string): { points: string[]; end: State } {
    const points: string[] = [];
    let trace = ops;
    let s = replay(m, trace);
    while (threadOf(s, 0) !== undefined) {
      if (points.length >= 20) throw new Error(`P0 did not finish in 20 steps: ${points.join(' | ')}`);
      const t = stateToJson(s).threads.find((x) => x.id === 'P0')!;
      points.push(`${t.at}: ${t.holds.join(', ')}`);
      trace += '; P0 step';
      s = replay(m, trace);
    }
    return { points, end: s };
  }

  it('no relocate variant leaves a lock point uncut', () => {
    for (const v of RELOCATE_VARIANTS) expect(disabledLockPoints(resolveKernel(v))).toEqual({ functions: [], lockPoints: [] });
  });

  it('a relocation: the new anon_vma lock, the PTL, each folio lock, then the move and the rest; the same end as at syscall granularity', () => {
    const b: Partial<Bounds> = { procs: 1, pages: 5, maxLen: 2, relocate: true };
    const ops = 'P0 mmap 0 2; P0 fault 0 w; P0 fault 1 w; P0 mremap 0 2 3 2 maymove,fixed,relocate';
    // No walker budget, as at syscall granularity: the end states can be compared.
    const { points, end } = stepThrough(lockModel('relocate-v3', { ...b, walkers: 0 }), ops);
    expect(points).toEqual([
      'lock_new_anon_vma: mmap_lock of P0',
      'relocate_anon_ptes: mmap_lock of P0, anon_vma->root->rwsem of A1',
      'relocate_anon_pte: mmap_lock of P0, anon_vma->root->rwsem of A1, PTE lock of P0',
      'relocate_anon_pte: mmap_lock of P0, anon_vma->root->rwsem of A1, PTE lock of P0',
      'move_page_tables: mmap_lock of P0, anon_vma->root->rwsem of A1',
      'copy_vma_and_data_finish: mmap_lock of P0',
    ]);
    const atOnce = run('relocate-v3', ops, b);
    expect(stateFingerprint(atOnce.m, end)).toBe(stateFingerprint(atOnce.m, atOnce.s));
  });

  it('a failed relocation (v3, pinned folio): the undo walks the same lock points, then the plain move is cut as mainline\'s', () => {
    const b: Partial<Bounds> = { procs: 1, pages: 5, maxLen: 2, relocate: true };
    const ops = 'P0 mmap 0 2; P0 fault 0 w; P0 fault 1 w; P0 pin 1; P0 mremap 0 2 3 2 maymove,fixed,relocate';
    // No walker budget, as at syscall granularity: the end states can be compared.
    const { points, end } = stepThrough(lockModel('relocate-v3', { ...b, walkers: 0 }), ops);
    expect(points.map((p) => p.split(':')[0])).toEqual([
      'lock_new_anon_vma',
      'relocate_anon_ptes',
      'relocate_anon_pte',
      'relocate_anon_pte', // the pinned folio: the relocation fails
      'relocate_anon_ptes', // undo
      'relocate_anon_pte',
      'relocate_anon_pte',
      'move_page_tables', // the retry, without relocation
      'copy_vma_and_data_finish',
    ]);
    const atOnce = run('relocate-v3', ops, b);
    expect(stateFingerprint(atOnce.m, end)).toBe(stateFingerprint(atOnce.m, atOnce.s));
    expect(end.vmas[end.mms[0]!.vmas[0]!]!.pgoff).toBe(0);
  });

  it('a plain move through the variant is cut where mainline\'s is, move_ptes included (need_rmap_locks)', () => {
    const b: Partial<Bounds> = { procs: 1, pages: 4, maxLen: 1, relocate: true };
    const ops = 'P0 mmap 0 2; P0 fault 1 w; P0 mremap 1 1 3 1 maymove,fixed; P0 step; P0 step; P0 mremap 3 1 1 1 maymove,fixed';
    const pcs = (v: string) => stepThrough(lockModel(v, b), ops).points.map((p) => p.split(':')[0]);
    expect(pcs('relocate-v3')).toEqual(['move_page_tables', 'move_ptes', 'copy_vma_and_data_finish']);
    expect(pcs('relocate-v3')).toEqual(pcs('mainline'));
  });

  it('between relocating a folio and moving its PTE, rmap-coverage waits for the new anon_vma lock: no walk can run until it is dropped', () => {
    const m = lockModel('relocate-v3', { procs: 1, pages: 3, maxLen: 1, relocate: true });
    const s = replay(m, 'P0 mmap 0 1; P0 fault 0 w; P0 mremap 0 1 2 1 maymove,fixed,relocate; P0 step; P0 step; P0 step');
    expect(threadOf(s, 0)!.pc).toBe('move_page_tables');
    const f = folioAt(s, 0, 0);
    expect(f.index).toBe(2); // relocated; its PTE is still at page 0
    expect(s.anonVmas[f.anonVma]!.rwsem.writer).toBe(0);
    const props = (x: State) => checkProperties(m, x).map((v) => v.property);
    expect(props(s)).not.toContain('rmap-coverage');
    // The same state with the lock let go: a walk could run, and would miss the PTE.
    const released = structuredClone(s);
    released.anonVmas[f.anonVma]!.rwsem = { writer: -1, readers: 0 };
    expect(props(released)).toContain('rmap-coverage');
  });

  describe('the lock-order inversion is an actual deadlock with a walker', () => {
    const only = ALL_PROPERTIES.filter((p) => p.id === 'no-deadlock');
    const model = (variant: string, b: Partial<Bounds>) =>
      createMmModel({ name: variant, kernel: resolveKernel(variant), bounds: { granularity: 'lock', procs: 2, maxLen: 2, ops: ['mmap', 'fault', 'mremap'], relocate: true, walkers: 1, ...b }, properties: only });
    /** The no-deadlock verdicts on the state the trace ends in. */
    const deadlockAfter = (variant: string, b: Partial<Bounds>, trace: string[]) => {
      const m = model(variant, b);
      return checkProperties(m, replayTexts(m, m.initial(), trace).states.at(-1)!).map((v) => v.detail);
    };

    it('folio lock under the PTL: folio_referenced holds the folio and waits for the PTL the relocation holds (depth 6)', () => {
      const trace = ['P0 mmap 0 1', 'P0 fault 0 w', 'P0 mremap 0 1 2 1 maymove,fixed,relocate', 'P0 step', 'P0 step', 'W referenced P0 0'];
      for (const v of RELOCATE_VARIANTS) {
        expect(deadlockAfter(v, { pages: 3 }, trace), v).toEqual([
          'deadlock: P0 at relocate_anon_pte holds mmap_lock of P0, anon_vma->root->rwsem of A1, PTE lock of P0 and waits for folio lock of F0, held by W0; W0 at folio_referenced_one holds folio lock of F0, anon_vma->root->rwsem of A0 (read) and waits for PTE lock of P0, held by P0',
        ]);
        // The search finds a deadlock at that depth (with the migrate walker, the first it meets holds the folio lock while it sleeps).
        expect(explore(model(v, { pages: 3 }), { depth: 6 }).outcome, v).toBe('violation');
      }
    });

    it('folio lock after the anon_vma lock: the new VMA adopted the old anon_vma, and try_to_unmap sleeps on it holding the folio (depth 7)', () => {
      const trace = ['P0 mmap 0 1', 'P0 fault 0 w', 'P0 mremap 0 1 1 1 maymove,fixed,relocate', 'P0 step', 'P0 step', 'W reclaim P0 0', 'W0 step'];
      expect(deadlockAfter('relocate-v3', { pages: 2 }, trace)).toEqual([
        'deadlock: P0 at relocate_anon_pte holds mmap_lock of P0, anon_vma->root->rwsem of A0, PTE lock of P0 and waits for folio lock of F0, held by W0; W0 at anon_vma_lock_read holds folio lock of F0 and waits for anon_vma->root->rwsem of A0, held by P0',
      ]);
    });
  });
});

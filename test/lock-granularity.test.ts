// Lock granularity (issue 4): syscalls as steps cut at lock points, rmap
// walkers, and the properties that need them: walker-sees-every-mapping
// (B5a), no-use-after-free across steps (B8e), no-deadlock and
// lock-discipline (a test-only variant taking two locks in reverse order).
import { describe, expect, it } from 'vitest';
import { createMmModel, type Bounds, type MmModel } from '../models/mm/model.ts';
import { loadModel } from '../models/variants/load.ts';
import { resolveKernel } from '../models/variants/registry.ts';
import { disabledLockPoints } from '../models/mm/sched.ts';
import { threadOf, type State } from '../models/mm/state.ts';
import { splitOps } from '../models/mm/ops.ts';
import { checkProperties } from '../src/engine/model.ts';
import { explore, replayTexts, stateFingerprint } from '../src/engine/explorer.ts';
import { ALL_PROPERTIES } from '../properties/index.ts';
import { stateToJson } from '../src/report/json.ts';
import { exploreOffThread } from './explore-off-thread.ts';

const LOCK: Partial<Bounds> = { granularity: 'lock' };

/** The search of `model(variant, bounds, only)` to `depth`, in a worker thread (test/explore-off-thread.ts). */
const offThread = (variant: string, bounds: Partial<Bounds>, depth: number, only: string[]) =>
  exploreOffThread({ variant, bounds: { ...LOCK, ...bounds }, depth, only });

function model(variant: string, bounds: Partial<Bounds> = {}, only?: string[]): MmModel {
  return createMmModel({
    name: variant,
    kernel: resolveKernel(variant),
    bounds: { ...LOCK, ...bounds },
    ...(only ? { properties: ALL_PROPERTIES.filter((p) => only.includes(p.id)) } : {}),
  });
}

function run(m: MmModel, ops: string): State {
  const r = replayTexts(m, m.initial(), splitOps(ops));
  return r.states[r.states.length - 1]!;
}

const enabled = (m: MmModel, s: State): string[] => m.actions(s).map((a) => m.formatAction(s, a));

// P0's first mremap splits [0,2) and moves page 1 to 3; the second moves it
// back, and copy_vma merges the destination into [0,1), which comes first in
// the anon_vma's tree: need_rmap_locks (B5a's shape).
const B5A_PREFIX = 'P0 mmap 0 2; P0 fault 1 w; P0 mremap 1 1 3 1 maymove,fixed; P0 step; P0 step';
const B5A_BOUNDS: Partial<Bounds> = { procs: 1, pages: 4, maxLen: 1, ops: ['mmap', 'fault', 'mremap', 'munmap'] };

describe('threads and steps', () => {
  it('walkers and steps exist at lock granularity only', () => {
    const m = createMmModel({ bounds: { procs: 1, pages: 2 } });
    const s = run(m, 'P0 mmap 0 1; P0 fault 0 w');
    expect(() => m.parseAction(s, 'W reclaim P0 0')).toThrow(/lock granularity only/);
    expect(() => m.parseAction(s, 'P0 step')).toThrow(/lock granularity only/);
    const l = model('mainline', { procs: 1, pages: 2 });
    expect(() => l.parseAction(run(l, 'P0 mmap 0 1'), 'W reclaim P0 0')).toThrow(/maps no anonymous folio at page 0/);
    expect(() => l.parseAction(run(l, 'P0 mmap 0 1'), 'P0 step')).toThrow(/P0 has nothing in flight/);
  });

  it('an mremap move is three steps; the process issues nothing else until it is done', () => {
    const m = model('mainline', B5A_BOUNDS);
    const s = run(m, 'P0 mmap 0 2; P0 fault 1 w; P0 mremap 1 1 3 1 maymove,fixed');
    expect(threadOf(s, 0)!.pc).toBe('move_page_tables');
    expect(enabled(m, s).filter((a) => a.startsWith('P0'))).toEqual(['P0 step  # move_page_tables']);
    expect(m.isQuiescent(s)).toBe(false);
    const done = run(m, B5A_PREFIX);
    expect(m.isQuiescent(done)).toBe(true);
    // The same result as the syscall done at once (no walker budget on either side).
    const noWalkers = model('mainline', { ...B5A_BOUNDS, walkers: 0 });
    const atOnce = createMmModel({ bounds: { procs: 1, pages: 4, maxLen: 1 } });
    expect(stateFingerprint(m, run(noWalkers, B5A_PREFIX))).toBe(stateFingerprint(atOnce, run(atOnce, 'P0 mmap 0 2; P0 fault 1 w; P0 mremap 1 1 3 1 maymove,fixed')));
  });

  it('fork is a step per parent VMA for anon_vma_fork and one for copy_page_range; the child runs nothing until it is done', () => {
    const m = model('mainline', { procs: 2, pages: 4, maxLen: 1 });
    const prefix = 'P0 mmap 0 1; P0 mmap 2 1; P0 fault 0 w; P0 fault 2 w; P0 fork';
    const pcs: string[] = [];
    let s = run(m, prefix);
    for (let i = 0; threadOf(s, 0) !== undefined; i++) {
      pcs.push(threadOf(s, 0)!.pc);
      expect(enabled(m, s).some((a) => a.startsWith('P1'))).toBe(false);
      s = run(m, prefix + '; P0 step'.repeat(i + 1));
    }
    expect(pcs).toEqual(['copy_page_range', 'dup_mmap_vma', 'copy_page_range']);
    expect(Object.keys(s.mms[1]!.ptes)).toEqual(['0', '2']);
    // A walker between the second VMA's steps unmaps the parent's page before the child copies it.
    s = run(m, `${prefix}; P0 step; W reclaim P0 2; W0 step; W0 step; P0 step; P0 step`);
    expect(Object.keys(s.mms[1]!.ptes)).toEqual(['0']);
    expect(checkProperties(m, s)).toEqual([]);
  });

  it('a variant replacing a function on the path of a lock point runs that path within one step', () => {
    const wrapped = { ...resolveKernel('mainline') };
    wrapped.copy_vma_and_data = (c, vrm) => resolveKernel('mainline').copy_vma_and_data(c, vrm);
    const m = createMmModel({ name: 'wrapped', kernel: wrapped, bounds: { ...LOCK, ...B5A_BOUNDS } });
    const s = run(m, 'P0 mmap 0 2; P0 fault 1 w; P0 mremap 1 1 3 1 maymove,fixed');
    expect(s.threads).toEqual({});
    expect(stateFingerprint(m, s)).toBe(stateFingerprint(m, run(model('mainline', B5A_BOUNDS), B5A_PREFIX)));
  });

  it("a variant's own lock point ends the step and resumes at the variant's own step; a mainline lock point it takes over stays cut", async () => {
    const loaded = await loadModel('test/fixtures/own-lock-point.ts');
    const m = createMmModel({ name: loaded.name, kernel: loaded.kernel, bounds: { ...LOCK, ...B5A_BOUNDS } });
    const issue = 'P0 mmap 0 2; P0 fault 1 w; P0 mremap 1 1 3 1 maymove,fixed';
    let s = run(m, issue);
    const pcs: string[] = [];
    for (let i = 1; threadOf(s, 0) !== undefined; i++) {
      pcs.push(threadOf(s, 0)!.pc);
      expect(enabled(m, s).filter((a) => a.startsWith('P0'))).toEqual([`P0 step  # ${threadOf(s, 0)!.pc}`]);
      s = run(m, issue + '; P0 step'.repeat(i));
    }
    // Its own point, then mainline's move_page_tables (taken over); move_ptes and copy_vma_and_data_finish run through.
    expect(pcs).toEqual(['copy_vma', 'move_page_tables']);
    expect(stateFingerprint(m, s)).toBe(stateFingerprint(m, run(model('mainline', B5A_BOUNDS), B5A_PREFIX)));
    expect(disabledLockPoints(loaded.kernel)).toEqual({ functions: ['copy_vma_and_data'], lockPoints: ['move_ptes', 'copy_vma_and_data_finish'] });
    expect(disabledLockPoints(resolveKernel('mainline'))).toEqual({ functions: [], lockPoints: [] });
  });

  it("a variant over a variant inherits its base's steps", () => {
    const kernel = resolveKernel({ name: 'over-v3', base: 'relocate-v3', description: 'test-only', overrides: () => ({}) });
    expect(disabledLockPoints(kernel)).toEqual({ functions: [], lockPoints: [] });
    const m = createMmModel({ name: 'over-v3', kernel, bounds: { ...LOCK, procs: 1, pages: 3, maxLen: 1, relocate: true } });
    expect(threadOf(run(m, 'P0 mmap 0 1; P0 fault 0 w; P0 mremap 0 1 2 1 maymove,fixed,relocate'), 0)!.pc).toBe('lock_new_anon_vma');
  });

  it('a walker that finds the anon_vma write-locked pins it and sleeps; its step is not enabled until the lock is free', () => {
    const m = model('mainline', B5A_BOUNDS);
    // The second mremap holds the anon_vma write lock (need_rmap_locks) between take_rmap_locks and the PTL.
    let s = run(m, `${B5A_PREFIX}; P0 mremap 3 1 1 1 maymove,fixed; P0 step`);
    expect(threadOf(s, 0)!.pc).toBe('move_ptes');
    const av = s.vmas[s.mms[0]!.vmas[0]!]!.anonVma;
    const refBefore = s.anonVmas[av]!.refcount;
    s = run(m, `${B5A_PREFIX}; P0 mremap 3 1 1 1 maymove,fixed; P0 step; W reclaim P0 3; W0 step`);
    const w = s.threads[Object.keys(s.threads).map(Number).find((id) => id !== 0)!]!;
    expect(w.pc).toBe('anon_vma_lock_read');
    expect(s.anonVmas[av]!.refcount).toBe(refBefore + 1);
    expect(enabled(m, s).filter((a) => a.startsWith('W0'))).toEqual([]);
    expect(stateToJson(s).threads).toEqual([
      { id: 'P0', syscall: 'P0 mremap 3 1 1 1 maymove,fixed', at: 'move_ptes', holds: ['mmap_lock of P0', 'anon_vma->root->rwsem of A0'] },
      { id: 'W0', walker: 'reclaim', folio: 'F0', at: 'anon_vma_lock_read', holds: ['folio lock of F0'] },
    ]);
    expect(() => replayTexts(m, m.initial(), splitOps(`${B5A_PREFIX}; P0 mremap 3 1 1 1 maymove,fixed; P0 step; W reclaim P0 3; W0 step; W0 step`))).toThrow(
      /waits for anon_vma->root->rwsem of A0/,
    );
    // Once the move drops the lock the walker takes it, drops its pin and walks.
    s = run(m, `${B5A_PREFIX}; P0 mremap 3 1 1 1 maymove,fixed; P0 step; W reclaim P0 3; W0 step; P0 step; W0 step`);
    expect(s.anonVmas[av]!.refcount).toBe(refBefore);
    expect(checkProperties(m, s)).toEqual([]);
  });

  it('folio_referenced gives up on a contended anon_vma (try_lock), without a property check', () => {
    const m = model('mainline', B5A_BOUNDS);
    const s = run(m, `${B5A_PREFIX}; P0 mremap 3 1 1 1 maymove,fixed; P0 step; W referenced P0 3`);
    expect(Object.keys(s.threads)).toEqual(['0']);
    expect(s.budgets.walkers).toBe(0);
    expect(checkProperties(m, s)).toEqual([]);
  });

  it('a walker keeps its folio alive after the last unmap, and frees it when it ends', () => {
    const m = model('mainline', { procs: 1, pages: 2, maxLen: 1 });
    const s = run(m, 'P0 mmap 0 1; P0 fault 0 w; W reclaim P0 0; W0 step; W0 step');
    expect(Object.keys(s.threads)).toEqual([]);
    expect(s.mms[0]!.ptes[0]).toBeUndefined();
    expect(Object.keys(s.folios)).toEqual([]);
    expect(checkProperties(m, s)).toEqual([]);
  });
});

describe('walker-sees-every-mapping (bug-corpus B5a)', () => {
  it('need_rmap_locks forced false: the walker passes the destination, the PTE moves behind it, the mapping is missed', () => {
    const r = explore(model('b5a-mremap-no-rmap-locks', B5A_BOUNDS, ['walker-sees-every-mapping']), { depth: 11, from: run(model('mainline', B5A_BOUNDS), B5A_PREFIX), fromPrefix: 5 });
    expect(r.outcome).toBe('violation');
    const v = r.violations[0]!;
    expect(v.property).toBe('walker-sees-every-mapping');
    expect(v.detail).toBe('W0 (try_to_unmap of F0) finished uncontended but P0 still maps page 0 of it at 1');
    expect(v.traceText).toEqual([
      'P0 mremap 3 1 1 1 maymove,fixed',
      'W reclaim P0 3',
      'W0 step  # folio_lock_anon_vma_read',
      'W0 step  # try_to_unmap_one',
      'P0 step  # move_page_tables',
      'W0 step  # try_to_unmap_one',
    ]);
  });

  it('mainline at the same bounds: no violation of any property', () => {
    const r = explore(model('mainline', B5A_BOUNDS), { depth: 11, from: run(model('mainline', B5A_BOUNDS), B5A_PREFIX), fromPrefix: 5, stopAtFirst: false });
    expect(r.violations).toEqual([]);
    expect(r.distinct).toBeGreaterThan(5000);
  });
});

describe('no-use-after-free across steps (bug-corpus B8e)', () => {
  it('__put_anon_vma dropping the root first is caught at lock granularity', async () => {
    // No walker: a migrate walker's put_anon_vma reaches the bug in as many steps (test/walkers.test.ts).
    const bounds: Partial<Bounds> = { procs: 3, pages: 1, maxLen: 1, ops: ['mmap', 'fault', 'fork', 'exit'], walkers: 0 };
    const r = await offThread('b8e-put-root-first', bounds, 12, ['no-use-after-free']);
    expect(r.outcome).toBe('violation');
    expect(r.violations[0]!.detail).toBe('use-after-free: A0 in anon_vma_free(root->rwsem)');
    // Forks and exits are two steps each here: the syscall-granularity trace of B8e, stepped.
    expect(r.violations[0]!.traceText).toEqual([
      'P0 mmap 0 1',
      'P0 fault 0 w',
      'P0 fork',
      'P0 step  # copy_page_range',
      'P0 exit',
      'P0 step  # exit_mmap_free',
      'P1 fork',
      'P1 step  # copy_page_range',
      'P1 exit',
      'P1 step  # exit_mmap_free',
      'P2 exit',
      'P2 step  # exit_mmap_free',
    ]);
    expect((await offThread('mainline', bounds, 12, ['no-use-after-free'])).violations).toEqual([]);
  });
});

describe('no-deadlock and lock-discipline', () => {
  const bounds: Partial<Bounds> = { procs: 1, pages: 3, maxLen: 1, ops: ['mmap', 'fault', 'mremap'] };

  it('a variant taking mmap_lock under the folio and anon_vma locks deadlocks against an mremap; who holds and who waits is shown', async () => {
    const loaded = await loadModel('test/fixtures/unmap-takes-mmap-lock.ts');
    const m = createMmModel({ name: loaded.name, kernel: loaded.kernel, bounds: { ...LOCK, ...bounds }, properties: ALL_PROPERTIES.filter((p) => p.id === 'no-deadlock') });
    const r = explore(m, { depth: 8 });
    expect(r.outcome).toBe('violation');
    const v = r.violations[0]!;
    expect(v.property).toBe('no-deadlock');
    expect(v.detail).toMatch(/^deadlock: P0 at copy_vma_and_data_finish holds mmap_lock of P0 and waits for anon_vma->root->rwsem of A0, held by W0 \(read\); W0 at try_to_unmap_one holds folio lock of F0, anon_vma->root->rwsem of A0 \(read\) and waits for mmap_lock of P0, held by P0$/);
    expect(m.actions(v.state)).toEqual([]);
    // lockdep sees the inversion at the first acquisition, before any deadlock.
    const ld = createMmModel({ name: loaded.name, kernel: loaded.kernel, bounds: { ...LOCK, ...bounds }, properties: ALL_PROPERTIES.filter((p) => p.id === 'lock-discipline') });
    const l = explore(ld, { depth: 8 }).violations[0]!;
    expect(l.detail).toBe('mmap_lock of P0 taken while holding folio lock of F0 (order, §6.1)');
    expect(l.traceText).toEqual(['P0 mmap 0 1', 'P0 fault 0 w', 'W reclaim P0 0', 'W0 step  # folio_lock_anon_vma_read', 'W0 step  # try_to_unmap_one']);
  });

  it('a lock that leaked (held by no thread in flight) deadlocks the thread that needs it', () => {
    const m = model('mainline', { procs: 1, pages: 2, maxLen: 1 }, ['no-deadlock']);
    const s = structuredClone(run(m, 'P0 mmap 0 1; P0 fault 0 w; W reclaim P0 0'));
    expect(checkProperties(m, s)).toEqual([]);
    s.anonVmas[0]!.rwsem = { writer: 7, readers: 0 };
    // The trylock fails: the walker pins the anon_vma and goes to sleep on the lock, which nobody will release.
    const asleep = m.next(s, m.parseAction(s, 'W0 step'));
    expect(checkProperties(m, asleep).map((v) => v.detail)).toEqual([
      'deadlock: W0 at anon_vma_lock_read holds folio lock of F0 and waits for anon_vma->root->rwsem of A0, held by P7 (not running: the lock leaked)',
    ]);
  });

  it('mainline at the same bounds: no deadlock, no lock error', () => {
    const r = explore(model('mainline', bounds, ['no-deadlock', 'lock-discipline']), { depth: 8, stopAtFirst: false });
    expect(r.violations).toEqual([]);
  });
});

describe('mainline at lock granularity', () => {
  it('2 processes, 1 walker, every syscall: no violation of any property to depth 6', () => {
    const r = explore(model('mainline', { procs: 2, pages: 2, maxLen: 1 }), { depth: 6, stopAtFirst: false });
    expect(r.violations).toEqual([]);
    // The bench's lock row at depth 6, pinned: lock points a variant registers (sched.ts) must not change mainline's search.
    expect([r.generated, r.distinct]).toEqual([7186, 3672]);
    expect(r.coverage['walk']!.fired).toBeGreaterThan(0);
    expect(r.coverage['step']!.fired).toBeGreaterThan(0);
  });
});

/** The quiescent states reachable from the initial state (the whole space: bounds must keep it small). */
function quiescentStates(m: MmModel): Set<string> {
  const seen = new Set<string>();
  const out = new Set<string>();
  let frontier = [m.initial()];
  while (frontier.length > 0) {
    const next: State[] = [];
    for (const s of frontier)
      for (const a of m.actions(s)) {
        const t = m.next(s, a);
        const fp = stateFingerprint(m, t);
        if (seen.has(fp)) continue;
        seen.add(fp);
        next.push(t);
        if (m.isQuiescent(t)) out.add(fp);
      }
    frontier = next;
  }
  return out;
}

describe('splitting loses and invents nothing', () => {
  const bounds: Partial<Bounds> = { procs: 1, pages: 2, maxLen: 1, ops: ['mmap', 'fault', 'munmap', 'mremap'], walkers: 0 };

  it('one process, no walker: lock granularity reaches exactly the quiescent states of syscall granularity', () => {
    const atOnce = quiescentStates(createMmModel({ bounds: { ...bounds, granularity: 'syscall' } }));
    const steps = quiescentStates(model('mainline', bounds));
    expect(atOnce.size).toBeGreaterThan(50);
    expect([...steps].sort()).toEqual([...atOnce].sort());
  });

  it('merging local steps (issuing a syscall) keeps every quiescent state', () => {
    const reduced = quiescentStates(model('mainline', { ...bounds, walkers: 1 }));
    const full = quiescentStates(model('mainline', { ...bounds, walkers: 1, reduce: false }));
    expect([...reduced].sort()).toEqual([...full].sort());
  });
});

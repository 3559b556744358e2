// rmap walkers from any mapping of a folio, and the migrate walker that holds
// a reference on an anon_vma across a sleep (issue 17, item 5;
// models/mm/walkers.ts, migrate.ts, rmap.ts folio_get_anon_vma).
import { describe, expect, it } from 'vitest';
import { createMmModel, WALKER_KINDS, type Bounds, type MmModel } from '../models/mm/model.ts';
import { encodeState } from '../models/mm/canon.ts';
import { splitOps, type Op } from '../models/mm/ops.ts';
import { ptePages, threadOf, WALKER_BASE, ZERO_PAGE, type Id, type State } from '../models/mm/state.ts';
import { loadModel } from '../models/variants/load.ts';
import { resolveKernel } from '../models/variants/registry.ts';
import { checkProperties } from '../src/engine/model.ts';
import { explore, replayTexts } from '../src/engine/explorer.ts';
import { ALL_PROPERTIES } from '../properties/index.ts';
import { runCli } from './run-cli.ts';

const LOCK: Partial<Bounds> = { granularity: 'lock' };
const W0 = WALKER_BASE;

function model(bounds: Partial<Bounds> = {}, variant = 'mainline'): MmModel {
  return createMmModel({ name: variant, kernel: resolveKernel(variant), bounds: { ...LOCK, ...bounds } });
}

/** The states along ops, from the initial state. */
function states(m: MmModel, ops: string): State[] {
  return replayTexts(m, m.initial(), splitOps(ops)).states;
}
const run = (m: MmModel, ops: string): State => states(m, ops).at(-1)!;

const details = (m: MmModel, s: State): string[] => checkProperties(m, s).map((v) => `${v.property}: ${v.detail}`);

describe('the migrate walker: folio_get_anon_vma, a sleep, remove_migration_ptes, put_anon_vma', () => {
  const m = model({ procs: 2, pages: 2, maxLen: 1 });

  it('its reference keeps the anon_vma alive across a munmap of the last mapping; put_anon_vma frees it', () => {
    const ss = states(m, 'P0 mmap 0 1; P0 fault 0 w; W migrate P0 0; P0 munmap 0 1; P0 step; P0 step; W0 step; W0 step');
    const [, , faulted, asleep, , , unmapped, locked, done] = ss;
    expect(faulted!.anonVmas[0]!.refcount).toBe(1);
    // Asleep after folio_get_anon_vma: the folio locked, the anon_vma pinned.
    expect(threadOf(asleep!, W0)).toMatchObject({ walker: 'migrate', pc: 'remove_migration_ptes', anonVmas: [0] });
    expect(asleep!.folios[0]!.locked).toBe(W0);
    expect(asleep!.anonVmas[0]!.refcount).toBe(2);
    // unlink_anon_vmas dropped the tree's reference: the walker's is the last.
    expect(unmapped!.mms[0]!.vmas).toEqual([]);
    expect(unmapped!.folios[0]!.mapcount).toBe(0);
    expect(unmapped!.anonVmas[0]).toMatchObject({ refcount: 1, tree: [], freed: false });
    // The walk locks the anon_vma through folio->mapping: alive, so no use-after-free.
    expect(threadOf(locked!, W0)).toMatchObject({ pc: 'remove_migration_pte', anonVmas: [0, 0] });
    expect(locked!.anonVmas[0]).toMatchObject({ refcount: 1, freed: false });
    // put_anon_vma at the end frees it; the folio goes with the walker's reference.
    expect(done!.anonVmas[0]).toMatchObject({ refcount: 0, freed: true });
    expect(done!.folios[0]).toBeUndefined();
    expect(threadOf(done!, W0)).toBeUndefined();
    for (const s of ss) expect(details(m, s)).toEqual([]);
  });

  it("put_anon_vma of a fork child's anon_vma frees it and, through __put_anon_vma, drops the root's reference", () => {
    // P1's write fault copies the page into P1's own anon_vma A1 (root A0); P1 exits while the walker sleeps.
    const ss = states(m, 'P0 mmap 0 1; P0 fault 0 w; P0 fork; P0 step; P1 fault 0 w; W migrate P1 0; P1 exit; P1 step; W0 step; W0 step');
    const asleep = ss[6]!;
    const exited = ss[8]!;
    const done = ss[10]!;
    expect(asleep.anonVmas[1]).toMatchObject({ root: 0, refcount: 2 });
    expect(asleep.anonVmas[0]!.refcount).toBe(2); // its tree, and A1's pin on the root
    expect(exited.anonVmas[1]).toMatchObject({ refcount: 1, tree: [], freed: false });
    expect(done.anonVmas[1]).toMatchObject({ refcount: 0, freed: true });
    expect(done.anonVmas[0]).toMatchObject({ refcount: 1, freed: false });
    for (const s of ss) expect(details(m, s)).toEqual([]);
  });

  it("the last put is the walker's: __put_anon_vma runs there, so B8e (the root dropped first) is caught through it", () => {
    // P0 exits: A0 lives on A1's pin alone. P1's own folio is in A1; P1 exits while the walker sleeps on A1.
    const ops = 'P0 mmap 0 1; P0 fault 0 w; P0 fork; P0 step; P0 exit; P0 step; P1 fault 0 w; W migrate P1 0; P1 exit; P1 step; W0 step; W0 step';
    const b8e = model({ procs: 2, pages: 1, maxLen: 1 }, 'b8e-put-root-first');
    const s = run(b8e, ops);
    expect(details(b8e, s)).toContain('no-use-after-free: use-after-free: A0 in anon_vma_free(root->rwsem)');
    const ok = run(model({ procs: 2, pages: 1, maxLen: 1 }), ops);
    expect(details(m, ok)).toEqual([]);
    expect(ok.anonVmas[0]).toMatchObject({ refcount: 0, freed: true });
    expect(ok.anonVmas[1]).toMatchObject({ refcount: 0, freed: true });
  });

  it('a folio unmapped before the first step: folio_get_anon_vma takes nothing, the walker unlocks and ends', () => {
    const n = model({ procs: 1, pages: 2, maxLen: 1, reduce: false });
    const ss = states(n, 'P0 mmap 0 1; P0 step; P0 fault 0 w; P0 step; W migrate P0 0; P0 munmap 0 1; P0 step; P0 step; P0 step; W0 step');
    const before = ss.at(-2)!;
    const after = ss.at(-1)!;
    expect(before.anonVmas[0]!.freed).toBe(true);
    expect(before.folios[0]!.mapcount).toBe(0);
    expect(threadOf(after, W0)).toBeUndefined();
    expect(after.folios[0]).toBeUndefined();
    for (const s of ss) expect(details(n, s)).toEqual([]);
  });

  it('it sleeps holding the folio lock: a second migration of the folio waits, a reclaim trylock gives up', () => {
    const two = model({ procs: 1, pages: 2, maxLen: 1, walkers: 2 });
    const s = run(two, 'P0 mmap 0 1; P0 fault 0 w; W migrate P0 0');
    const walks = two.actions(s).filter((a) => a.kind === 'walk').map((a) => two.formatAction(s, a));
    expect(walks).toEqual(['W reclaim P0 0', 'W referenced P0 0']);
    expect(() => two.next(s, two.parseAction(s, 'W migrate P0 0'))).toThrow(/blocked: waits for folio lock of F0/);
  });

  it('the walk feeds walker-sees-every-mapping: a remove_migration_pte that finds nothing is caught', () => {
    const blind = resolveKernel({ name: 'blind', base: 'mainline', description: 'test', overrides: () => ({ remove_migration_pte: () => [] }) });
    const b = createMmModel({ name: 'blind', kernel: blind, bounds: { ...LOCK, procs: 2, pages: 2, maxLen: 1 } });
    const s = run(b, 'P0 mmap 0 1; P0 fault 0 w; W migrate P0 0; W0 step; W0 step');
    expect(details(b, s)).toEqual(['walker-sees-every-mapping: W0 (remove_migration_ptes of F0) finished uncontended but P0 still maps page 0 of it at 0']);
    expect(details(m, run(m, 'P0 mmap 0 1; P0 fault 0 w; W migrate P0 0; W0 step; W0 step'))).toEqual([]);
  });
});

describe('exploration at lock granularity with the migrate walker', () => {
  const BOUNDS: Partial<Bounds> = { procs: 2, pages: 2, maxLen: 1, walkers: 1 };

  it('the explorer offers every walker kind, migrate included, once per folio', () => {
    const m = model(BOUNDS);
    const s = run(m, 'P0 mmap 0 2; P0 fault 0 w; P0 fault 1 w; P0 fork; P0 step');
    const walks = m.actions(s).filter((a) => a.kind === 'walk').map((a) => m.formatAction(s, a));
    expect(WALKER_KINDS).toEqual(['reclaim', 'referenced', 'migrate']);
    expect(walks).toEqual(['W reclaim P0 0', 'W referenced P0 0', 'W migrate P0 0', 'W reclaim P0 1', 'W referenced P0 1', 'W migrate P0 1']);
  });

  it('mainline, procs 2, pages 2, max-len 1, depth 5, one walker: every property holds', () => {
    const r = explore(model(BOUNDS), { depth: 5, stopAtFirst: false });
    expect(r.violations).toEqual([]);
    expect(r.coverage['walk']!.fired).toBeGreaterThan(0);
  });

  it('a variant whose folio_get_anon_vma takes no reference is caught (no-use-after-free)', async () => {
    const loaded = await loadModel('test/fixtures/migrate-no-anon-vma-ref.ts');
    const m = createMmModel({ name: loaded.name, kernel: loaded.kernel, bounds: { ...LOCK, ...BOUNDS } });
    const r = explore(m, { depth: 5 });
    expect(r.outcome).toBe('violation');
    expect(r.violations[0]!.property).toBe('no-use-after-free');
    expect(r.violations[0]!.traceText).toEqual(['P0 mmap 0 1', 'P0 fault 0 w', 'W migrate P0 0', 'W0 step  # remove_migration_ptes', 'W0 step  # remove_migration_pte']);
    // Across the munmap of the last mapping: the walk locks the anon_vma munmap freed.
    const s = run(m, 'P0 mmap 0 1; P0 fault 0 w; W migrate P0 0; P0 munmap 0 1; P0 step; P0 step; W0 step');
    expect(s.anonVmas[0]!.freed).toBe(true);
    expect(details(m, s)).toContain('no-use-after-free: use-after-free: A0 in anon_vma_lock_read');
  });
});

describe('walkers from any mapping of a folio', () => {
  /** Every (process, page) whose PTE maps folio f. */
  function mappings(s: State, f: Id): { proc: Id; page: number }[] {
    const out: { proc: Id; page: number }[] = [];
    for (const key of Object.keys(s.mms)) {
      const ptes = s.mms[Number(key)]!.ptes;
      for (const page of ptePages(ptes)) if (ptes[page]!.folio === f) out.push({ proc: Number(key), page });
    }
    return out;
  }

  /** The successor of op in s, canonically encoded, or 'blocked'. */
  function successor(m: MmModel, s: State, op: Op): string {
    try {
      return encodeState(m.next(s, op)).join(',');
    } catch (e) {
      if (e instanceof Error && /blocked/.test(e.message)) return 'blocked';
      throw e;
    }
  }

  // Folios mapped more than once: shared by fork, moved by mremap, a large folio mapped page by page, one under a walker.
  const CASES: { name: string; bounds: Partial<Bounds>; ops: string }[] = [
    { name: 'shared by fork', bounds: { procs: 3, pages: 3, maxLen: 2 }, ops: 'P0 mmap 0 2; P0 fault 0 w; P0 fault 1 w; P0 fork; P0 step; P1 fork; P1 step' },
    {
      name: 'the child moved it with mremap',
      bounds: { procs: 2, pages: 3, maxLen: 1 },
      ops: 'P0 mmap 0 1; P0 fault 0 w; P0 fork; P0 step; P1 mremap 0 1 2 1 maymove,fixed; P1 step; P1 step',
    },
    { name: 'a large folio', bounds: { procs: 2, pages: 2, maxLen: 2, largeFolios: true }, ops: 'P0 mmap 0 2; P0 fault 0 w large; P0 fork; P0 step' },
    { name: 'a walker in flight', bounds: { procs: 2, pages: 2, maxLen: 1, walkers: 2 }, ops: 'P0 mmap 0 1; P0 fault 0 w; P0 fork; P0 step; W referenced P1 0' },
  ];

  for (const c of CASES)
    for (const reduce of [true, false])
      it(`${c.name}${reduce ? '' : ', no reduction'}: every start gives the same successor`, () => {
        const m = model({ ...c.bounds, reduce });
        const s = run(model(c.bounds), c.ops);
        const folios = new Set<Id>();
        for (const key of Object.keys(s.mms)) for (const pte of s.mms[Number(key)]!.ptes) if (pte !== undefined && pte.folio !== ZERO_PAGE) folios.add(pte.folio);
        let compared = 0;
        for (const f of folios) {
          const at = mappings(s, f);
          expect(at.length).toBeGreaterThan(1);
          for (const walker of WALKER_KINDS) {
            const next = at.map(({ proc, page }) => successor(m, s, { kind: 'walk', walker, proc, page, enomem: 0 }));
            expect(new Set(next).size).toBe(1);
            compared += next.length;
          }
        }
        expect(compared).toBeGreaterThan(0);
      });

  it('the command line starts a walker at any mapping of a folio (here the fork child, on a large folio page 1)', async () => {
    const r = await runCli([
      'run',
      '--granularity',
      'lock',
      '--large-folios',
      '--pages',
      '2',
      'P0 mmap 0 2; P0 fault 0 w large; P0 fork; P0 step; W migrate P1 1; P1 exit; P1 step; W0 step; W0 step',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/no property violated/);
  });
});

import { describe, expect, it } from 'vitest';
import { makeCtx } from '../models/mm/ctx.ts';
import { anon_vma_interval_tree_insert, rmap_walk_anon } from '../models/mm/rmap.ts';
import { ScenarioBuilder, fillCounters, withPte, setCounters, workedExample } from '../models/mm/scenario.ts';
import { NIL, VM_NOMERGE, VM_READ, VM_SPECIAL, VM_WRITE, ZERO_PAGE, type State } from '../models/mm/state.ts';

const counters = (s: State, id: number) => {
  const a = s.anonVmas[id]!;
  return { children: a.numChildren, active: a.numActiveVmas, ref: a.refcount };
};

describe('ScenarioBuilder', () => {
  it('allocates ids from nextId and builds mms with free locks', () => {
    const b = new ScenarioBuilder();
    const p0 = b.mm();
    const p1 = b.mm({ parent: p0 });
    const a0 = b.anonVma();
    const v0 = b.vma(p0, { start: 0, end: 4 });
    const f0 = b.folio();
    const s = b.build();
    expect([p0, p1, a0, v0, f0]).toEqual([0, 1, 0, 0, 0]);
    expect(s.nextId).toEqual({ mm: 2, vma: 1, anonVma: 1, avc: 0, folio: 1, walker: 0, content: 1 });
    expect(s.mms[p1]).toEqual({
      id: 1,
      parent: 0,
      vmas: [],
      ptes: [],
      mmapLock: { writer: NIL, readers: 0 },
      lockSeq: 0,
      pageTableLock: NIL,
      ptl: NIL,
      hasPinned: false,
      user: [],
    });
    expect(s.mms[p0]!.parent).toBe(NIL);
  });

  it('keeps an mm\'s VMAs sorted by start and sets flags and pgoff', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const hi = b.vma(p, { start: 6, end: 8, prot: 'r', close: true });
    const lo = b.vma(p, { start: 0, end: 2, pgoff: 10, special: true, nomerge: true });
    const detached = b.vma(p, { start: 3, end: 4, attached: false });
    const s = b.build();
    expect(s.mms[p]!.vmas).toEqual([lo, hi]);
    expect(s.vmas[hi]).toMatchObject({ pgoff: 6, flags: VM_READ, hasClose: true, anonVma: NIL, chain: [], attached: true });
    expect(s.vmas[lo]!.pgoff).toBe(10);
    expect(s.vmas[lo]!.flags).toBe(VM_READ | VM_WRITE | VM_SPECIAL | VM_NOMERGE);
    expect(s.vmas[detached]!.attached).toBe(false);
  });

  it('link prepends to the chain and inserts after every AVC whose start <= the key', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const a = b.anonVma();
    const r = b.anonVma();
    const v4 = b.vma(p, { start: 4, end: 6 });
    const v0 = b.vma(p, { start: 0, end: 2 });
    const v4b = b.vma(p, { start: 10, end: 11, pgoff: 4 });
    const v2 = b.vma(p, { start: 2, end: 4 });
    const c4 = b.link(v4, a);
    const c0 = b.link(v0, a);
    const c4b = b.link(v4b, a);
    const c2 = b.link(v2, a);
    const cr = b.link(v2, r);
    const s = b.build();
    expect(s.anonVmas[a]!.tree).toEqual([c0, c2, c4, c4b]);
    expect(s.vmas[v2]!.chain).toEqual([cr, c2]);
    expect(s.avcs[c4b]).toEqual({ id: c4b, vma: v4b, anonVma: a, inTree: true, cachedStart: 4, cachedLast: 4 });
    expect(s.avcs[c2]).toMatchObject({ cachedStart: 2, cachedLast: 3 });
    expect(s.nextId.avc).toBe(5);
  });

  it('inserts into trees exactly as the model\'s anon_vma_interval_tree_insert does', () => {
    // Same VMAs linked once by the builder and once by the kernel function.
    const make = (inTree: boolean) => {
      const b = new ScenarioBuilder();
      const p = b.mm();
      const a = b.anonVma();
      const specs = [
        { start: 4, end: 6 },
        { start: 0, end: 2 },
        { start: 8, end: 9, pgoff: 4 },
        { start: 2, end: 3, pgoff: 0 },
        { start: 6, end: 8 },
      ];
      const avcs = specs.map((o) => b.link(b.vma(p, o), a, { inTree }));
      return { s: b.build(), a, avcs };
    };
    const built = make(true);
    const raw = make(false);
    const c = makeCtx(raw.s, {} as never, 0);
    for (const id of raw.avcs) anon_vma_interval_tree_insert(c, id, raw.a);
    expect(raw.s.anonVmas[raw.a]!.tree).toEqual(built.s.anonVmas[built.a]!.tree);
    expect(raw.s.avcs).toEqual(built.s.avcs);
  });

  it('linkAll builds the chain in reverse link order', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const [x, y, z] = [b.anonVma(), b.anonVma(), b.anonVma()];
    const v = b.vma(p, { start: 0, end: 1 });
    b.linkAll(v, [x!, y!, z!]);
    const s = b.build();
    expect(s.vmas[v]!.chain.map((c) => s.avcs[c]!.anonVma)).toEqual([z, y, x]);
  });

  it('link can leave an AVC out of the tree', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const a = b.anonVma();
    const v = b.vma(p, { start: 0, end: 1 });
    const c = b.link(v, a, { inTree: false });
    const s = b.build();
    expect(s.vmas[v]!.chain).toEqual([c]);
    expect(s.anonVmas[a]!.tree).toEqual([]);
    expect(s.avcs[c]!.inTree).toBe(false);
  });

  it('anonVma defaults to a root and inherits the parent\'s root', () => {
    const b = new ScenarioBuilder();
    const r = b.anonVma();
    const c1 = b.anonVma({ parent: r });
    const c2 = b.anonVma({ parent: c1 });
    const s = b.build();
    expect(s.anonVmas[r]).toMatchObject({ root: r, parent: r, refcount: 0, freed: false, tree: [] });
    expect(s.anonVmas[c2]).toMatchObject({ root: r, parent: c1 });
  });

  it('pte accounts mapcount (not for the zero page or when told not to); unpte undoes it', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const f = b.folio({ exclusive: true, nrPages: 2 });
    b.pte(p, 0, f);
    b.pte(p, 1, f, { sub: 1, writable: false });
    b.pte(p, 2, ZERO_PAGE, { writable: false });
    b.pte(p, 3, f, { account: false });
    let s = b.build();
    expect(s.folios[f]).toMatchObject({ mapcount: 2, exclusive: 3, nrPages: 2, anonVma: NIL, locked: NIL });
    expect(s.mms[p]!.ptes[1]).toEqual({ folio: f, sub: 1, writable: false });
    expect(s.mms[p]!.ptes[2]!.folio).toBe(ZERO_PAGE);
    b.unpte(p, 0);
    s = b.build();
    expect(s.folios[f]!.mapcount).toBe(1);
    expect(s.mms[p]!.ptes[0]).toBeUndefined();
  });

  it('removeVma and removeMm take AVCs out of trees and PTEs out of mapcounts', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const a = b.anonVma();
    const v = b.vma(p, { start: 0, end: 2 });
    const c = b.link(v, a);
    b.setAnon(v, a);
    const f = b.folio({ anonVma: a });
    b.pte(p, 0, f);
    b.removeMm(p);
    const s = b.build();
    expect(s.mms).toEqual({});
    expect(s.vmas).toEqual({});
    expect(s.avcs[c]).toBeUndefined();
    expect(s.anonVmas[a]!.tree).toEqual([]);
    expect(s.folios[f]!.mapcount).toBe(0);
  });

  it('build returns an independent deep copy', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const s1 = b.build();
    b.vma(p, { start: 0, end: 1 });
    s1.mms[p]!.ptes = withPte(s1.mms[p]!.ptes, 5, { folio: 0, sub: 0, writable: true });
    const s2 = b.build();
    expect(s1.mms[p]!.vmas).toEqual([]);
    expect(s2.mms[p]!.vmas).toEqual([0]);
    expect(s2.mms[p]!.ptes[5]).toBeUndefined();
  });

  it('records warnings once, uaf entries and freed tombstones', () => {
    const b = new ScenarioBuilder();
    const a = b.anonVma();
    b.warn('x').warn('x').warn('y').uaf('use-after-free: anon_vma 0 in z').free(a);
    const s = b.build();
    expect(s.warnings).toEqual(['x', 'y']);
    expect(s.uaf).toEqual(['use-after-free: anon_vma 0 in z']);
    expect(s.anonVmas[a]!.freed).toBe(true);
  });

  it('setCounters overrides filled counters; fillCounters skips freed anon_vmas', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const r = b.anonVma();
    const dead = b.anonVma({ refcount: 7 });
    const v = b.vma(p, { start: 0, end: 1 });
    b.link(v, r);
    b.setAnon(v, r);
    b.free(dead);
    b.fillCounters().setCounters(r, { refcount: 5 });
    const s = b.build();
    expect(counters(s, r)).toEqual({ children: 1, active: 1, ref: 5 });
    expect(s.anonVmas[dead]!.refcount).toBe(7);
    fillCounters(s);
    expect(s.anonVmas[r]!.refcount).toBe(1);
    setCounters(s, r, { numChildren: -1 });
    expect(s.anonVmas[r]!.numChildren).toBe(-1);
  });

  it('hand-built states feed the model\'s pure rmap walk', () => {
    const { s, Vp, V1, F0, R } = workedExample(2);
    const walk = rmap_walk_anon(s, F0);
    expect(walk.map((w) => [w.vma, w.address])).toEqual([
      [Vp, 1],
      [V1, 1],
    ]);
    expect(walk.map((w) => w.avc)).toEqual(s.anonVmas[R]!.tree);
  });
});

describe('workedExample (kernel-semantics §9) reproduces the digest\'s counters av{children, active, ref}', () => {
  it('step 1: R{1,1,1}, Vp = [R]', () => {
    const w = workedExample(1);
    expect(counters(w.s, w.R)).toEqual({ children: 1, active: 1, ref: 1 });
    expect(w.s.vmas[w.Vp]!.chain.map((c) => w.s.avcs[c]!.anonVma)).toEqual([w.R]);
  });

  it('step 2: R children 2 ref 2, A1{0,1,1}, V1 = [A1, R]', () => {
    const w = workedExample(2);
    expect(counters(w.s, w.R)).toEqual({ children: 2, active: 1, ref: 2 });
    expect(counters(w.s, w.A1)).toEqual({ children: 0, active: 1, ref: 1 });
    expect(w.s.vmas[w.V1]!.chain.map((c) => w.s.avcs[c]!.anonVma)).toEqual([w.A1, w.R]);
  });

  it('step 3: A1 children 1, R ref 3, V2 = [A2, R, A1]', () => {
    const w = workedExample(3);
    expect(counters(w.s, w.R)).toEqual({ children: 2, active: 1, ref: 3 });
    expect(counters(w.s, w.A1)).toEqual({ children: 1, active: 1, ref: 1 });
    expect(counters(w.s, w.A2)).toEqual({ children: 0, active: 1, ref: 1 });
    expect(w.s.vmas[w.V2]!.chain.map((c) => w.s.avcs[c]!.anonVma)).toEqual([w.A2, w.R, w.A1]);
  });

  it('step 4: A1{1,0,1}', () => {
    const w = workedExample(4);
    expect(counters(w.s, w.A1)).toEqual({ children: 1, active: 0, ref: 1 });
    expect(counters(w.s, w.R)).toEqual({ children: 2, active: 1, ref: 3 });
  });

  it('step 5: A1 reused: A1{1,1,1}, R ref unchanged, V3 = [A1, R, A2]', () => {
    const w = workedExample(5);
    expect(counters(w.s, w.A1)).toEqual({ children: 1, active: 1, ref: 1 });
    expect(counters(w.s, w.R).ref).toBe(3);
    expect(w.s.vmas[w.V3]!.anonVma).toBe(w.A1);
    expect(w.s.vmas[w.V3]!.chain.map((c) => w.s.avcs[c]!.anonVma)).toEqual([w.A1, w.R, w.A2]);
  });

  it('step 6: A2 active 0, tree {V3}', () => {
    const w = workedExample(6);
    expect(counters(w.s, w.A2)).toEqual({ children: 0, active: 0, ref: 1 });
    expect(w.s.anonVmas[w.A2]!.tree.map((c) => w.s.avcs[c]!.vma)).toEqual([w.V3]);
  });

  it('step 7: A1 and A2 freed, R back to {1,1,1}', () => {
    const w = workedExample(7);
    expect(w.s.anonVmas[w.A1]!.freed).toBe(true);
    expect(w.s.anonVmas[w.A2]!.freed).toBe(true);
    expect(counters(w.s, w.R)).toEqual({ children: 1, active: 1, ref: 1 });
  });
});

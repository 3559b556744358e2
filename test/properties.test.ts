import { describe, expect, it } from 'vitest';
import { ScenarioBuilder, withPte, workedExample } from '../models/mm/scenario.ts';
import { NIL, ZERO_PAGE, emptyState, type State } from '../models/mm/state.ts';
import { ALL_PROPERTIES, propertyById } from '../properties/index.ts';

const check = (id: string, s: State): string[] => {
  const p = propertyById(id);
  if (p === undefined) throw new Error(`no property ${id}`);
  return p.check(s);
};

/** Every property's violations, keyed by id (only the failing ones). */
const failing = (s: State): Record<string, string[]> => {
  const out: Record<string, string[]> = {};
  for (const p of ALL_PROPERTIES) {
    const v = p.check(s);
    if (v.length) out[p.id] = v;
  }
  return out;
};

/** One process, one faulted VMA V0 [0,4) on root A0, folio F0 at page 1 (index 1, exclusive). */
function single() {
  const b = new ScenarioBuilder();
  const p = b.mm();
  const a = b.anonVma();
  const v = b.vma(p, { start: 0, end: 4 });
  b.link(v, a);
  b.setAnon(v, a);
  const f = b.folio({ anonVma: a, index: 1, exclusive: true });
  b.pte(p, 1, f);
  b.fillCounters();
  return { b, p, a, v, f };
}

describe('ALL_PROPERTIES', () => {
  it('has the documented ids in a stable order, with rules and when', () => {
    expect(ALL_PROPERTIES.map((p) => [p.id, p.when])).toEqual([
      ['rmap-coverage', 'always'],
      ['chain-tree-consistent', 'quiescent'],
      ['own-anon-vma-linked', 'quiescent'],
      ['single-root', 'quiescent'],
      ['chain-closed-under-parent', 'quiescent'],
      ['same-anon-vma-same-chain', 'quiescent'],
      ['counters-exact', 'quiescent'],
      ['mapcount-exact', 'quiescent'],
      ['exclusive-means-single', 'quiescent'],
      ['tree-keys-fresh', 'quiescent'],
      ['pgoff-linear', 'quiescent'],
      ['no-use-after-free', 'always'],
      ['fork-reuse-rule', 'always'],
      ['close-never-removed', 'always'],
      ['relocate-exclusive', 'always'],
      ['walker-sees-every-mapping', 'always'],
      ['no-deadlock', 'always'],
      ['lock-discipline', 'always'],
      ['no-leak', 'end'],
      ['kernel-asserts', 'always'],
      ['user-view', 'quiescent'],
      ['failure-atomic', 'transition'],
      ['range-exact', 'transition'],
    ]);
    for (const p of ALL_PROPERTIES) {
      expect(p.description.length).toBeGreaterThan(10);
      expect(p.rule).toMatch(/§|bug-corpus/);
    }
  });

  it('all hold on the empty state and on a single faulted VMA', () => {
    expect(failing(emptyState())).toEqual({});
    expect(failing(single().b.build())).toEqual({});
  });

  for (const step of [1, 2, 3, 4, 5, 6, 7] as const) {
    it(`all hold after step ${step} of the worked example (kernel-semantics §9)`, () => {
      expect(failing(workedExample(step).s)).toEqual({});
    });
  }

  it('are pure: checking does not change the state', () => {
    const { s } = workedExample(5);
    s.folios[0]!.mapcount = 9;
    const before = structuredClone(s);
    failing(s);
    expect(s).toEqual(before);
  });
});

describe('rmap-coverage (I7)', () => {
  it('fails when folio->mapping is not on the mapping VMA\'s chain', () => {
    const { s, A1 } = workedExample(2);
    s.folios[0]!.anonVma = A1; // F0 mapped by V0 (chain [A0]) and V1 (chain [A1, A0])
    const v = check('rmap-coverage', s);
    expect(v).toHaveLength(1);
    expect(v[0]).toContain('P0 page 1');
    expect(v[0]).toContain('V0 [0,4) of P0');
    expect(v[0]).toContain('A1 is not on the VMA\'s chain');
  });

  it('fails when the AVC is on the chain but not in the tree', () => {
    const { s, R, Vp } = workedExample(2);
    const avcId = s.vmas[Vp]!.chain[0]!;
    s.anonVmas[R]!.tree = s.anonVmas[R]!.tree.filter((c) => c !== avcId);
    const v = check('rmap-coverage', s);
    expect(v).toHaveLength(1);
    expect(v[0]).toContain('V0 [0,4) of P0');
    expect(v[0]).toContain('not in A0\'s tree');
  });

  it('fails when the walk finds the VMA at another address (index mismatch)', () => {
    const { b, f } = single();
    const s = b.build();
    s.folios[f]!.index = 2; // PTE at page 1 has linear index 1
    const v = check('rmap-coverage', s);
    expect(v).toHaveLength(1);
    expect(v[0]).toContain('F0');
    expect(v[0]).toContain('looks for pgoff 2');
  });

  it('fails when the folio index lies outside the VMA\'s range', () => {
    const { b, f } = single();
    const s = b.build();
    s.folios[f]!.index = 9;
    expect(check('rmap-coverage', s)[0]).toContain('outside the VMA\'s pgoff range [0,3]');
  });

  it('fails when a PTE lies in no VMA', () => {
    const { b, p, f } = single();
    b.pte(p, 6, f, { writable: false });
    const v = check('rmap-coverage', b.build());
    expect(v).toEqual([expect.stringContaining('P0 page 6 (F0 page 0) lies in no VMA of P0')]);
  });

  it('fails when the roots differ even though the walk finds the VMA', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const r = b.anonVma();
    const other = b.anonVma();
    const v = b.vma(p, { start: 0, end: 2 });
    b.linkAll(v, [other, r]);
    b.setAnon(v, r);
    const f = b.folio({ anonVma: other, index: 0 });
    b.pte(p, 0, f);
    const d = check('rmap-coverage', b.build());
    expect(d).toHaveLength(1);
    expect(d[0]).toContain('root of F0\'s A1 is A1 but root of the VMA\'s A0 is A0');
  });

  it('ignores the zero page and non-anon folios, holds for shared COW pages', () => {
    const { b, p } = single();
    b.pte(p, 2, ZERO_PAGE, { writable: false });
    const g = b.folio(); // not anon yet
    b.pte(p, 3, g);
    expect(check('rmap-coverage', b.build())).toEqual([]);
    expect(check('rmap-coverage', workedExample(5).s)).toEqual([]);
  });

  it('uses live keys: a moved VMA whose PTE stayed linear is still found', () => {
    const { b, v } = single();
    const s = b.build();
    // mremap-like move of V0 [0,4) to [4,8) keeping pgoff 0, PTE moved with it.
    s.vmas[v]!.start = 4;
    s.vmas[v]!.end = 8;
    s.mms[0]!.ptes = withPte([], 5, s.mms[0]!.ptes[1]!);
    expect(check('rmap-coverage', s)).toEqual([]);
  });
});

describe('chain-tree-consistent (I1)', () => {
  it('fails for an AVC on the chain but not in the tree', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const a = b.anonVma();
    const v = b.vma(p, { start: 0, end: 1 });
    b.link(v, a, { inTree: false });
    b.setAnon(v, a);
    expect(check('chain-tree-consistent', b.build())).toEqual([
      'V0 [0,1) of P0: AVC0 (V0 -> A0) is on the chain but not in A0\'s tree',
    ]);
  });

  it('fails for an AVC in the tree but not on the chain', () => {
    const { s, Vp } = workedExample(2);
    const removed = s.vmas[Vp]!.chain.at(-1)!;
    s.vmas[Vp]!.chain = s.vmas[Vp]!.chain.slice(0, -1);
    const v = check('chain-tree-consistent', s);
    expect(v).toEqual([`A0: AVC${removed} (V0 -> A0) is in the tree but not on V0 [0,4) of P0's chain`]);
  });

  it('fails for an orphan AVC and for a dangling chain entry', () => {
    const { b } = single();
    const s = b.build();
    s.avcs[7] = { id: 7, vma: 0, anonVma: 0, inTree: false, cachedStart: 0, cachedLast: 3 };
    s.vmas[0]!.chain = [...s.vmas[0]!.chain, 8];
    const v = check('chain-tree-consistent', s);
    expect(v).toContain('AVC7 (V0 -> A0) is on no chain and in no tree (leaked)');
    expect(v).toContain('V0 [0,4) of P0: chain holds AVC8, which does not exist');
  });

  it('holds on the worked example', () => {
    expect(check('chain-tree-consistent', workedExample(3).s)).toEqual([]);
  });
});

describe('own-anon-vma-linked (I2)', () => {
  it('fails when anon_vma is set with an empty chain', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const a = b.anonVma();
    const v = b.vma(p, { start: 2, end: 3 });
    b.setAnon(v, a);
    expect(check('own-anon-vma-linked', b.build())).toEqual(['V0 [2,3) of P0: anon_vma is A0 but the chain is empty']);
  });

  it('fails when the chain is non-empty with a NULL anon_vma', () => {
    const { b, v } = single();
    b.setAnon(v, NIL);
    expect(check('own-anon-vma-linked', b.build())).toEqual(['V0 [0,4) of P0: anon_vma is NULL but the chain is [A0]']);
  });

  it('fails when anon_vma is not on the chain', () => {
    const { s, V1, R } = workedExample(2);
    s.vmas[V1]!.anonVma = 5;
    s.vmas[V1]!.chain = s.vmas[V1]!.chain.filter((c) => s.avcs[c]!.anonVma === R);
    expect(check('own-anon-vma-linked', s)).toEqual(['V1 [0,4) of P1: anon_vma A5 is not in its chain [A0]']);
  });

  it('holds for an unfaulted VMA and the worked example', () => {
    const b = new ScenarioBuilder();
    b.vma(b.mm(), { start: 0, end: 2 });
    expect(check('own-anon-vma-linked', b.build())).toEqual([]);
    expect(check('own-anon-vma-linked', workedExample(5).s)).toEqual([]);
  });
});

describe('single-root (I3)', () => {
  it('fails for a chain with two roots', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const r1 = b.anonVma();
    const r2 = b.anonVma();
    const v = b.vma(p, { start: 0, end: 1 });
    b.linkAll(v, [r1, r2]);
    b.setAnon(v, r2);
    expect(check('single-root', b.build())).toEqual(['V0 [0,1) of P0: chain [A1, A0] has several roots A1, A0']);
  });

  it('fails when the root is not on the chain', () => {
    const { s, V1, R } = workedExample(2);
    s.vmas[V1]!.chain = s.vmas[V1]!.chain.filter((c) => s.avcs[c]!.anonVma !== R);
    expect(check('single-root', s)).toEqual(['V1 [0,4) of P1: root A0 of chain [A1] is not on the chain']);
  });

  it('holds on the worked example', () => {
    expect(check('single-root', workedExample(6).s)).toEqual([]);
  });
});

describe('chain-closed-under-parent (I4)', () => {
  it('fails when a parent is missing from the chain', () => {
    const { s, V2, A1 } = workedExample(3);
    s.vmas[V2]!.chain = s.vmas[V2]!.chain.filter((c) => s.avcs[c]!.anonVma !== A1);
    expect(check('chain-closed-under-parent', s)).toEqual([
      'V2 [0,4) of P2: A2 is on chain [A2, A0] but its parent A1 is not',
    ]);
  });

  it('holds on the worked example', () => {
    expect(check('chain-closed-under-parent', workedExample(5).s)).toEqual([]);
  });
});

describe('same-anon-vma-same-chain (I5)', () => {
  it('fails when two VMAs share an anon_vma with different chain sets (B1a/B2 shape)', () => {
    const { s, V3, A2 } = workedExample(5);
    // V3 adopts A2 (still active in V2) and its chain lacks A1: V2 and V3 share A2 with different sets.
    s.vmas[V3]!.anonVma = A2;
    s.vmas[V3]!.chain = s.vmas[V3]!.chain.filter((c) => s.avcs[c]!.anonVma !== 1);
    const v = check('same-anon-vma-same-chain', s);
    expect(v).toEqual(['V2 [0,4) of P2 and V3 [0,4) of P3 share anon_vma A2 but link to {A0, A1, A2} and {A0, A2}']);
  });

  it('holds when two split halves share an anon_vma and a chain', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const a = b.anonVma();
    const lo = b.vma(p, { start: 0, end: 2 });
    const hi = b.vma(p, { start: 2, end: 4 });
    for (const v of [lo, hi]) {
      b.link(v, a);
      b.setAnon(v, a);
    }
    b.fillCounters();
    const s = b.build();
    expect(check('same-anon-vma-same-chain', s)).toEqual([]);
    expect(failing(s)).toEqual({});
  });
});

describe('counters-exact (I6)', () => {
  it('fails for each wrong counter, naming the anon_vma', () => {
    const w = workedExample(3);
    w.s.anonVmas[w.R]!.refcount = 2; // one child's root pin missing
    w.s.anonVmas[w.A1]!.numChildren = 0;
    w.s.anonVmas[w.A2]!.numActiveVmas = 2;
    expect(check('counters-exact', w.s)).toEqual([
      'A0: refcount is 2, expected 3',
      'A1: num_children is 0, expected 1',
      'A2: num_active_vmas is 2, expected 1',
    ]);
  });

  it('fails for a negative counter (B3b underflow shape)', () => {
    const b = new ScenarioBuilder();
    b.anonVma();
    b.fillCounters().setCounters(0, { numChildren: -1 });
    expect(check('counters-exact', b.build())).toEqual(['A0: num_children is negative (-1)']);
  });

  it('ignores freed anon_vmas; holds on the worked example', () => {
    const w = workedExample(7);
    w.s.anonVmas[w.A1]!.refcount = 4;
    expect(check('counters-exact', w.s)).toEqual([]);
    expect(check('counters-exact', workedExample(4).s)).toEqual([]);
  });
});

describe('mapcount-exact (I8)', () => {
  it('fails when the mapcount differs from the number of PTEs', () => {
    const { s, F0 } = workedExample(3);
    s.folios[F0]!.mapcount = 2;
    expect(check('mapcount-exact', s)).toEqual(['F0: mapcount is 2 but 3 PTE(s) map it']);
  });

  it('fails when a PTE maps a folio that does not exist', () => {
    const { b, p } = single();
    b.pte(p, 2, 9, { account: false });
    expect(check('mapcount-exact', b.build())).toEqual(['P0 page 2 (F9 page 0): PTE maps F9, which does not exist']);
  });

  it('holds for shared pages, zero pages and unmapped folios', () => {
    const { b, p } = single();
    b.pte(p, 2, ZERO_PAGE, { writable: false });
    b.folio({ pinned: true });
    expect(check('mapcount-exact', b.build())).toEqual([]);
    expect(check('mapcount-exact', workedExample(5).s)).toEqual([]);
  });
});

describe('exclusive-means-single (I9)', () => {
  it('fails when an exclusive page is mapped by two processes (fork did not clear it)', () => {
    const { s, F0 } = workedExample(2);
    s.folios[F0]!.exclusive = 1;
    expect(check('exclusive-means-single', s)).toEqual([
      'F0 page 0 is PageAnonExclusive but mapped by 2 PTEs (P0 page 1, P1 page 1)',
    ]);
  });

  it('checks each page of a large folio; an unmapped page may keep the bit (the kernel does not clear it on zap)', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const a = b.anonVma();
    const v = b.vma(p, { start: 0, end: 4 });
    b.link(v, a);
    b.setAnon(v, a);
    const f = b.folio({ anonVma: a, index: 0, nrPages: 2, exclusive: true });
    b.pte(p, 0, f); // page 1 of the folio is not mapped
    b.fillCounters();
    const s = b.build();
    expect(check('exclusive-means-single', s)).toEqual([]);
    s.mms[p]!.ptes = withPte(s.mms[p]!.ptes, 1, { folio: f, sub: 1, writable: true });
    s.folios[f]!.mapcount = 2;
    expect(failing(s)).toEqual({});
    s.mms[p]!.ptes = withPte(s.mms[p]!.ptes, 2, { folio: f, sub: 1, writable: true });
    s.folios[f]!.mapcount = 3;
    expect(check('exclusive-means-single', s)).toEqual(['F0 page 1 is PageAnonExclusive but mapped by 2 PTEs (P0 page 1, P0 page 2)']);
  });

  it('holds for an exclusive private page and for unmapped folios', () => {
    const { b } = single();
    b.folio({ exclusive: true, pinned: true });
    expect(check('exclusive-means-single', b.build())).toEqual([]);
  });
});

describe('tree-keys-fresh (I10)', () => {
  it('fails when a VMA\'s range changed without pre/post update', () => {
    const { b, v } = single();
    const s = b.build();
    s.vmas[v]!.end = 3; // shrunk: key [0,3] stale, live [0,2]
    expect(check('tree-keys-fresh', s)).toEqual([
      'A0: AVC0 (V0 -> A0) is keyed [0,3] but V0 [0,3) of P0 covers pgoff [0,2]',
    ]);
  });

  it('fails when a tree is out of order', () => {
    const b = new ScenarioBuilder();
    const p = b.mm();
    const a = b.anonVma();
    const lo = b.vma(p, { start: 0, end: 2 });
    const hi = b.vma(p, { start: 2, end: 4 });
    b.link(lo, a);
    b.link(hi, a);
    const s = b.build();
    s.anonVmas[a]!.tree = [...s.anonVmas[a]!.tree].reverse();
    expect(check('tree-keys-fresh', s)).toEqual(['A0: tree out of order: AVC0 (V0 -> A0) (start 0) after AVC1 (V1 -> A0) (start 2)']);
  });

  it('holds when the keys were refreshed', () => {
    const { b, v } = single();
    const s = b.build();
    s.vmas[v]!.end = 3;
    s.avcs[0]!.cachedLast = 2;
    expect(check('tree-keys-fresh', s)).toEqual([]);
  });
});

describe('pgoff-linear (I11)', () => {
  it('fails when the PTE\'s linear index differs from the folio index', () => {
    const { b, v } = single();
    const s = b.build();
    s.vmas[v]!.pgoff = 3; // a move that reset pgoff of a faulted VMA
    s.avcs[0]!.cachedStart = 3;
    s.avcs[0]!.cachedLast = 6;
    expect(check('pgoff-linear', s)).toEqual(['P0 page 1 (F0 page 0) in V0 [0,4) of P0: linear index 4 != F0.index + 0 = 1']);
    expect(check('rmap-coverage', s)).toHaveLength(1);
  });

  it('holds on the worked example', () => {
    expect(check('pgoff-linear', workedExample(6).s)).toEqual([]);
  });
});

describe('no-use-after-free', () => {
  it('reports every recorded access to a freed anon_vma', () => {
    const { b } = single();
    b.uaf('use-after-free: anon_vma 3 in put_anon_vma').uaf('use-after-free: anon_vma 3 in anon_vma_free');
    expect(check('no-use-after-free', b.build())).toEqual([
      'use-after-free: anon_vma 3 in put_anon_vma',
      'use-after-free: anon_vma 3 in anon_vma_free',
    ]);
  });

  it('reports a VMA, AVC and mapped folio pointing to a freed anon_vma', () => {
    const { b, a } = single();
    b.free(a);
    expect(check('no-use-after-free', b.build())).toEqual([
      'V0 [0,4) of P0: vma->anon_vma is freed A0',
      'AVC0 (V0 -> A0): avc->anon_vma is freed A0',
      'F0 (mapcount 1): folio->mapping is freed A0',
    ]);
  });

  it('reports a live child whose parent or root was freed (B8e shape)', () => {
    const { s, R, A1 } = workedExample(7);
    s.anonVmas[A1]!.freed = false;
    s.anonVmas[R]!.freed = true;
    const v = check('no-use-after-free', s);
    expect(v).toContain('A1: ->parent is freed A0');
    expect(v).toContain('A1: ->root is freed A0');
  });

  it('reports a dangling anon_vma id', () => {
    const { b, v } = single();
    b.setAnon(v, 42);
    expect(check('no-use-after-free', b.build())).toEqual(['V0 [0,4) of P0: vma->anon_vma is A42, which does not exist']);
  });

  it('holds for an unmapped folio whose stale mapping points to a freed anon_vma', () => {
    const { s, R } = workedExample(7);
    s.folios[5] = { id: 5, anonVma: 1, index: 0, nrPages: 1, mapcount: 0, exclusive: 0, pinned: true, locked: NIL, data: [0] };
    expect(s.anonVmas[1]!.freed).toBe(true);
    expect(check('no-use-after-free', s)).toEqual([]);
    expect(s.anonVmas[R]!.freed).toBe(false);
  });
});

describe('close-never-removed', () => {
  it('reports close-removed records and nothing else', () => {
    const { b } = single();
    b.warn('close-removed: V3 [2,4) of P0 removed by vma_merge_existing_range').warn('unlink_anon_vmas: x');
    expect(check('close-never-removed', b.build())).toEqual(['V3 [2,4) of P0 removed by vma_merge_existing_range']);
  });

  it('holds without records', () => {
    const { b } = single();
    b.warn('some WARN');
    expect(check('close-never-removed', b.build())).toEqual([]);
  });
});

describe('no-leak', () => {
  it('reports what is left after every process exited', () => {
    const { b, p } = single();
    b.removeMm(p); // VMA and AVCs removed, but A0 not freed, F0 not freed
    const s = b.build();
    expect(check('no-leak', s)).toEqual(['A0 is not freed (refcount 1)', 'F0 remains (mapcount 0)']);
    s.avcs[3] = { id: 3, vma: 9, anonVma: 0, inTree: false, cachedStart: 0, cachedLast: 0 };
    expect(check('no-leak', s)).toContain('AVC3 (V9 -> A0) remains');
  });

  it('holds once everything is freed, and says nothing while a process remains', () => {
    const { b, p, a, f } = single();
    expect(check('no-leak', b.build())).toEqual([]);
    b.removeMm(p).dropFolio(f).free(a);
    expect(check('no-leak', b.build())).toEqual([]);
  });
});

describe('kernel-asserts', () => {
  it('reports each fired assert by name, except close-removed records', () => {
    const { b } = single();
    b.warn('check_anon_vma_clone: dst chain not empty').warn('close-removed: V1').warn('__page_check_anon_rmap: anon_vma roots differ');
    expect(check('kernel-asserts', b.build())).toEqual([
      'check_anon_vma_clone: dst chain not empty',
      '__page_check_anon_rmap: anon_vma roots differ',
    ]);
  });

  it('holds with no warnings', () => {
    expect(check('kernel-asserts', workedExample(3).s)).toEqual([]);
  });
});

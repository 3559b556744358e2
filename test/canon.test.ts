// The canonical encoding of the mm model (DESIGN.md §5): one fingerprint for
// states that differ only in allocation order or in a permutation of
// interchangeable processes; different fingerprints for states that differ
// in any modelled field.
import { produce } from 'immer';
import { describe, expect, it } from 'vitest';
import { encodeState } from '../models/mm/canon.ts';
import { createMmModel } from '../models/mm/model.ts';
import { ScenarioBuilder, withPte } from '../models/mm/scenario.ts';
import type { State } from '../models/mm/state.ts';
import { fingerprint, fingerprintHex } from '../src/engine/hash.ts';

const fp = (s: State): string => fingerprintHex(...fingerprint(encodeState(s)));

function runOps(ops: string, bounds = { procs: 3, pages: 8, maxLen: 4 }): State {
  const m = createMmModel({ bounds });
  let s = m.initial();
  for (const t of ops.split(';')) s = m.next(s, m.parseAction(s, t.trim()));
  return s;
}

describe('canonical form', () => {
  it('the same layout built in two allocation orders gives one fingerprint', () => {
    // Fault page 4 first or page 0 first: anon_vma, AVC and folio ids are allocated in another order.
    const a = runOps('P0 mmap 0 2; P0 mmap 4 2; P0 fault 0 w; P0 fault 4 w');
    const b = runOps('P0 mmap 4 2; P0 mmap 0 2; P0 fault 4 w; P0 fault 0 w');
    expect(JSON.stringify(a.folios)).not.toBe(JSON.stringify(b.folios));
    expect(fp(a)).toBe(fp(b));
  });

  it('the same layout built by hand in two id orders gives one fingerprint', () => {
    const build = (flip: boolean): State => {
      const b = new ScenarioBuilder();
      const p = b.mm();
      const avs = flip ? [b.anonVma(), b.anonVma()].reverse() : [b.anonVma(), b.anonVma()];
      const v0 = b.vma(p, { start: 0, end: 2 });
      const v1 = b.vma(p, { start: 4, end: 6 });
      b.link(v0, avs[0]!);
      b.setAnon(v0, avs[0]!);
      b.link(v1, avs[1]!);
      b.setAnon(v1, avs[1]!);
      b.fillCounters();
      return b.build();
    };
    expect(fp(build(false))).toBe(fp(build(true)));
  });

  it('interchangeable processes in either order give one fingerprint', () => {
    // Two children forked from P0, then one of them maps and faults: which one does not matter.
    const a = runOps('P0 mmap 0 2; P0 fork; P0 fork; P1 mmap 4 1; P1 fault 4 w');
    const b = runOps('P0 mmap 0 2; P0 fork; P0 fork; P2 mmap 4 1; P2 fault 4 w');
    expect(fp(a)).toBe(fp(b));
  });

  it('children that differ only in fork order are not merged when the rmap can tell them apart', () => {
    // Both faulted P0's page: the root's interval tree orders their VMAs by
    // insertion (equal keys), so which child faults later is visible to rmap walks.
    const a = runOps('P0 mmap 0 2; P0 fault 0 w; P0 fork; P0 fork; P1 fault 1 w');
    const b = runOps('P0 mmap 0 2; P0 fault 0 w; P0 fork; P0 fork; P2 fault 1 w');
    expect(fp(a)).not.toBe(fp(b));
  });

  it('states that differ in any modelled field give different fingerprints', () => {
    const s = runOps('P0 mmap 0 2; P0 fault 0 w; P0 fork; P1 fault 1 w');
    const base = fp(s);
    const av0 = Number(Object.keys(s.anonVmas)[0]);
    const vma0 = s.mms[0]!.vmas[0]!;
    const folio0 = Number(Object.keys(s.folios)[0]);
    const avc0 = s.vmas[vma0]!.chain[0]!;
    const mutations: [string, (d: State) => void][] = [
      ['vma start', (d) => void (d.vmas[vma0]!.start = 1)],
      ['vma pgoff', (d) => void (d.vmas[vma0]!.pgoff = 3)],
      ['vma flags', (d) => void (d.vmas[vma0]!.flags ^= 2)],
      ['vma close hook', (d) => void (d.vmas[vma0]!.hasClose = true)],
      ['vma anon_vma', (d) => void (d.vmas[vma0]!.anonVma = -1)],
      ['chain order', (d) => void (d.vmas[s.mms[1]!.vmas[0]!]!.chain = [...d.vmas[s.mms[1]!.vmas[0]!]!.chain].reverse())],
      ['avc in tree', (d) => void (d.avcs[avc0]!.inTree = false)],
      ['avc cached key', (d) => void (d.avcs[avc0]!.cachedLast = 9)],
      ['refcount', (d) => void d.anonVmas[av0]!.refcount++],
      ['num_children', (d) => void d.anonVmas[av0]!.numChildren++],
      ['num_active_vmas', (d) => void d.anonVmas[av0]!.numActiveVmas++],
      ['freed', (d) => void (d.anonVmas[av0]!.freed = true)],
      ['tree order', (d) => void (d.anonVmas[av0]!.tree = [...d.anonVmas[av0]!.tree].reverse())],
      ['rwsem', (d) => void (d.anonVmas[av0]!.rwsem = { ...d.anonVmas[av0]!.rwsem, readers: 1 })],
      ['variant counter', (d) => void (d.anonVmas[av0]!.ext = { degree: 1 })],
      ['folio index', (d) => void d.folios[folio0]!.index++],
      ['folio mapcount', (d) => void d.folios[folio0]!.mapcount++],
      ['folio exclusive', (d) => void (d.folios[folio0]!.exclusive ^= 1)],
      ['folio pinned', (d) => void (d.folios[folio0]!.pinned = true)],
      ['pte writable', (d) => void (d.mms[0]!.ptes = withPte(d.mms[0]!.ptes, 0, { ...d.mms[0]!.ptes[0]!, writable: !d.mms[0]!.ptes[0]!.writable }))],
      ['pte removed', (d) => void (d.mms[0]!.ptes = withPte(d.mms[0]!.ptes, 0, undefined))],
      ['mmap_lock', (d) => void (d.mms[0]!.mmapLock = { ...d.mms[0]!.mmapLock, readers: 1 })],
      ['MMF_HAS_PINNED', (d) => void (d.mms[0]!.hasPinned = true)],
      ['warning', (d) => void d.warnings.push('some WARN')],
      ['use-after-free record', (d) => void d.uaf.push('use-after-free: A0 in x')],
      ['enomem budget', (d) => void d.budgets.enomem++],
    ];
    const seen = new Set([base]);
    for (const [what, mutate] of mutations) {
      const f = fp(produce(s, mutate));
      expect(f, what).not.toBe(base);
      seen.add(f);
    }
    expect(seen.size).toBe(mutations.length + 1);
  });
});

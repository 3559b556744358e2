// The merge scenarios of the kernel's userland VMA tests
// (tools/testing/vma/tests/merge.c: simple_merge, simple_modify,
// simple_expand, simple_shrink, merge_new, vma_merge_special_flags,
// vma_merge_with_close, vma_merge_new_with_close, merge_existing,
// anon_vma_non_mergeable, dup_anon_vma, vmi_prealloc_fail, merge_extend,
// expand_only_mode), rewritten against the model's vma.c functions.
//
// Translation: byte addresses 0x1000 per page become page numbers (0x3000 ->
// 3). The kernel harness uses one shared dummy anon_vma and sets VMA
// pointers by hand (sometimes leaving chains and pointers inconsistent);
// here every faulted VMA is linked properly (a singular chain [R], counters
// per I6), so that the model's real anon_vma_clone / unlink_anon_vmas run
// and every resulting state can be checked with all properties. Sticky
// flags and per-VMA write locks (vma_write_started) are not modelled, so
// the sticky permutations of merge_new / merge_existing collapse into one
// run and the write-lock asserts are dropped.
import { produce } from 'immer';
import { describe, expect, it } from 'vitest';
import { checkProperties } from '../src/engine/model.ts';
import { makeCtx, type Ctx } from '../models/mm/ctx.ts';
import { anon_vma_lock_write, anon_vma_unlock_write } from '../models/mm/locks.ts';
import { mainlineKernel } from '../models/mm/kernel.ts';
import { mmap_write_lock, mmap_write_unlock } from '../models/mm/locks.ts';
import { createMmModel } from '../models/mm/model.ts';
import { ENOMEM } from '../models/mm/rmap.ts';
import { ScenarioBuilder, type VmaOpts } from '../models/mm/scenario.ts';
import { NIL, VM_READ, VM_SPECIAL, VM_WRITE, type AllocKind, type Id, type State } from '../models/mm/state.ts';
import { vma_attach, vma_next_from, vma_prev_of, vmg_state, type Vmg } from '../models/mm/vma.ts';

const RW = VM_READ | VM_WRITE;
const model = createMmModel();

interface Run<T> {
  s: State;
  out: T;
  allocLog: AllocKind[];
}

/** Run f on a draft of s as thread 0 holding P0's mmap write lock (as the kernel tests' callers do). */
function run<T>(s: State, f: (c: Ctx) => T, failAt = 0): Run<T> {
  let out: T | undefined;
  let allocLog: AllocKind[] = [];
  const next = produce(s, (draft) => {
    const c = makeCtx(draft, mainlineKernel, 0, failAt);
    mmap_write_lock(c, 0);
    out = f(c);
    mmap_write_unlock(c, 0);
    allocLog = [...c.allocLog];
  });
  return { s: next, out: out as T, allocLog };
}

/**
 * No property violated, no kernel assert, no use-after-free. user-view is
 * left out: these tests call internal functions (vma_expand, copy_vma, ...),
 * not syscalls, so the reference view of what the user reads is not updated.
 */
function clean(s: State): void {
  expect(checkProperties(model, s).filter((v) => v.property !== 'user-view')).toEqual([]);
  expect(s.warnings).toEqual([]);
  expect(s.uaf).toEqual([]);
}

/**
 * The kernel test's merge_new(): the caller supplies prev and next of the
 * (empty) range, found from an iterator at start, then vma_merge_new_range.
 */
function mergeNew(c: Ctx, mm: Id, start: number, end: number, pgoff: number, flags = RW): { vma: Id; g: Vmg } {
  const g = vmg_state(c, mm, NIL, NIL, start, end, flags, pgoff);
  g.prev = vma_prev_of(c, mm, start);
  g.next = vma_next_from(c, mm, start);
  return { vma: c.k.vma_merge_new_range(c, g), g };
}

/** The kernel test's merge_existing(): vma_merge_existing_range on [start, end) of middle. */
function mergeExisting(c: Ctx, mm: Id, prev: Id, middle: Id, start: number, end: number, pgoff: number, flags = RW): { vma: Id; g: Vmg } {
  const g = vmg_state(c, mm, prev, middle, start, end, flags, pgoff);
  return { vma: c.k.vma_merge_existing_range(c, g), g };
}

/** The kernel test's try_merge_new_vma(): merge, or allocate and link a new VMA. */
function tryMergeNew(c: Ctx, mm: Id, start: number, end: number, pgoff: number): { vma: Id; merged: boolean } {
  const { vma, g } = mergeNew(c, mm, start, end, pgoff);
  if (vma !== NIL) {
    expect(g.state).toBe('SUCCESS');
    return { vma, merged: true };
  }
  expect(g.state).toBe('NOMERGE');
  const id = c.k.vm_area_alloc(c, mm, start, end, pgoff, RW, false);
  vma_attach(c, id);
  return { vma: id, merged: false };
}

/**
 * Make an unfaulted VMA use anon_vma avId with a singular chain, as
 * __anon_vma_prepare does when it reuses a neighbour's anon_vma (§2.2 step 5):
 * the kernel test's "vma->anon_vma = &dummy_anon_vma" done consistently.
 */
function attachAnon(c: Ctx, vmaId: Id, avId: Id): void {
  const avc = c.k.anon_vma_chain_alloc(c);
  c.s.vmas[vmaId]!.anonVma = avId;
  c.k.anon_vma_chain_assign(c, vmaId, avc, avId);
  anon_vma_lock_write(c, avId);
  c.k.anon_vma_interval_tree_insert(c, avc, avId);
  anon_vma_unlock_write(c, avId);
  c.s.anonVmas[avId]!.numActiveVmas++;
}

const range = (s: State, id: Id) => {
  const v = s.vmas[id];
  if (v === undefined) throw new Error(`vma ${id} is gone`);
  return { start: v.start, end: v.end, pgoff: v.pgoff };
};
const anonOf = (s: State, id: Id) => s.vmas[id]!.anonVma;
const chainOf = (s: State, id: Id) => s.vmas[id]!.chain.map((a) => s.avcs[a]!.anonVma);
const counters = (s: State, id: Id) => {
  const a = s.anonVmas[id]!;
  return { children: a.numChildren, active: a.numActiveVmas, ref: a.refcount, freed: a.freed };
};
/** The VMAs of tree order of anon_vma id. */
const treeVmas = (s: State, id: Id) => s.anonVmas[id]!.tree.map((a) => s.avcs[a]!.vma);
const vmasOf = (s: State, mm: Id) => s.mms[mm]!.vmas;

/** A one-process layout: VMAs by name, optionally faulted on fresh roots (one per anon name) via the builder. */
function layout(specs: Record<string, VmaOpts & { anon?: string }>) {
  const b = new ScenarioBuilder();
  const mm = b.mm();
  const v: Record<string, Id> = {};
  const a: Record<string, Id> = {};
  for (const [name, spec] of Object.entries(specs)) {
    v[name] = b.vma(mm, spec);
    if (spec.anon !== undefined) {
      a[spec.anon] ??= b.anonVma();
      b.link(v[name]!, a[spec.anon]!);
      b.setAnon(v[name]!, a[spec.anon]!);
    }
  }
  b.fillCounters();
  const s = b.build();
  clean(s);
  return { s, mm, v, a };
}

describe('tools/testing/vma merge tests on the model', () => {
  it('test_simple_merge: a new [1,2) between [0,1) and [2,3) merges all three into the left VMA', () => {
    const { s, mm, v } = layout({ left: { start: 0, end: 1, pgoff: 0 }, right: { start: 2, end: 3, pgoff: 2 } });
    const r = run(s, (c) => mergeNew(c, mm, 1, 2, 1));
    expect(r.out.vma).toBe(v.left);
    expect(r.out.g.state).toBe('SUCCESS');
    expect(range(r.s, v.left!)).toEqual({ start: 0, end: 3, pgoff: 0 });
    expect(r.s.vmas[v.left!]!.flags).toBe(RW);
    expect(vmasOf(r.s, mm)).toEqual([v.left]);
    expect(r.s.vmas[v.right!]).toBeUndefined();
    clean(r.s);
  });

  it('test_simple_modify: vma_modify of [1,2) inside [0,3) splits into three', () => {
    const { s, mm, v } = layout({ init: { start: 0, end: 3, pgoff: 0 } });
    const r = run(s, (c) => c.k.vma_modify(c, vmg_state(c, mm, v.init!, v.init!, 1, 2, RW, 1)));
    expect(r.out).toEqual([0, v.init]);
    expect(range(r.s, v.init!)).toEqual({ start: 1, end: 2, pgoff: 1 });
    expect(vmasOf(r.s, mm).map((id) => range(r.s, id))).toEqual([
      { start: 0, end: 1, pgoff: 0 },
      { start: 1, end: 2, pgoff: 1 },
      { start: 2, end: 3, pgoff: 2 },
    ]);
    clean(r.s);
  });

  it('test_simple_expand: vma_expand of [0,1) to [0,3)', () => {
    const { s, mm, v } = layout({ vma: { start: 0, end: 1, pgoff: 0 } });
    const r = run(s, (c) => {
      const g = vmg_state(c, mm, NIL, NIL, 0, 3, RW, 0);
      g.target = v.vma!;
      return c.k.vma_expand(c, g);
    });
    expect(r.out).toBe(0);
    expect(range(r.s, v.vma!)).toEqual({ start: 0, end: 3, pgoff: 0 });
    clean(r.s);
  });

  it('test_simple_shrink: vma_shrink of [0,3) to [0,1)', () => {
    const { s, mm, v } = layout({ vma: { start: 0, end: 3, pgoff: 0 } });
    const r = run(s, (c) => c.k.vma_shrink(c, v.vma!, 0, 1, 0));
    expect(r.out).toBe(0);
    expect(range(r.s, v.vma!)).toEqual({ start: 0, end: 1, pgoff: 0 });
    expect(vmasOf(r.s, mm)).toEqual([v.vma]);
    clean(r.s);
  });

  it('test_merge_new: the full sequence of new-range merges, with anon_vmas', () => {
    // 0123456789ab
    // AA B       CC
    const { s: s0, mm, v } = layout({
      A: { start: 0, end: 2, pgoff: 0 },
      B: { start: 3, end: 4, pgoff: 3 },
      C: { start: 11, end: 12, pgoff: 11 },
    });
    const { A, B, C } = v as Record<'A' | 'B' | 'C', Id>;
    let s = s0;

    // No merge: [7,9) is adjacent to nothing; D is allocated and linked.
    // AA B   DD  CC
    let r: Run<{ vma: Id; merged: boolean }> = run(s, (c) => tryMergeNew(c, mm, 7, 9, 7));
    s = r.s;
    const D = r.out.vma;
    expect(r.out.merged).toBe(false);
    expect(range(s, D)).toEqual({ start: 7, end: 9, pgoff: 7 });
    expect(vmasOf(s, mm)).toEqual([A, B, D, C]);
    clean(s);

    // Merge both sides: A has ->close (no impact, A is kept), B is faulted
    // on a fresh root R (its first fault: no adjacent neighbour to reuse).
    // AA*B   DD  CC  ->  AAAA   DD  CC
    r = run(s, (c) => {
      c.s.vmas[A]!.hasClose = true;
      expect(c.k.anon_vma_prepare(c, B)).toBe(0);
      return tryMergeNew(c, mm, 2, 3, 2);
    });
    s = r.s;
    const R = s.vmas[A]!.anonVma;
    expect(R).not.toBe(NIL);
    expect(r.out).toEqual({ vma: A, merged: true });
    expect(range(s, A)).toEqual({ start: 0, end: 4, pgoff: 0 });
    expect(chainOf(s, A)).toEqual([R]);
    expect(s.vmas[B]).toBeUndefined();
    expect(vmasOf(s, mm)).toEqual([A, D, C]);
    expect(counters(s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
    expect(treeVmas(s, R)).toEqual([A]);
    clean(s);

    // Merge with prev: AAAA*  DD  CC
    r = run(s, (c) => tryMergeNew(c, mm, 4, 5, 4));
    s = r.s;
    expect(r.out).toEqual({ vma: A, merged: true });
    expect(range(s, A)).toEqual({ start: 0, end: 5, pgoff: 0 });
    expect(anonOf(s, A)).toBe(R);
    expect(vmasOf(s, mm)).toEqual([A, D, C]);
    clean(s);

    // Merge with next: D is faulted on R and has ->close (no impact: D is
    // expanded, not removed). AAAAA *DD  CC
    r = run(s, (c) => {
      attachAnon(c, D, R);
      c.s.vmas[D]!.hasClose = true;
      return tryMergeNew(c, mm, 6, 7, 6);
    });
    s = r.s;
    expect(r.out).toEqual({ vma: D, merged: true });
    expect(range(s, D)).toEqual({ start: 6, end: 9, pgoff: 6 });
    expect(anonOf(s, D)).toBe(R);
    expect(vmasOf(s, mm)).toEqual([A, D, C]);
    expect(counters(s, R)).toEqual({ children: 1, active: 2, ref: 1, freed: false });
    clean(s);

    // Merge both sides, D's ->close cleared (it would otherwise stop D's removal).
    // AAAAA*DDD  CC
    r = run(s, (c) => {
      c.s.vmas[D]!.hasClose = false;
      return tryMergeNew(c, mm, 5, 6, 5);
    });
    s = r.s;
    expect(r.out).toEqual({ vma: A, merged: true });
    expect(range(s, A)).toEqual({ start: 0, end: 9, pgoff: 0 });
    expect(anonOf(s, A)).toBe(R);
    expect(s.vmas[D]).toBeUndefined();
    expect(vmasOf(s, mm)).toEqual([A, C]);
    expect(counters(s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
    clean(s);

    // Merge with next: C faulted on R. AAAAAAAAA *CC
    r = run(s, (c) => {
      attachAnon(c, C, R);
      return tryMergeNew(c, mm, 10, 11, 10);
    });
    s = r.s;
    expect(r.out).toEqual({ vma: C, merged: true });
    expect(range(s, C)).toEqual({ start: 10, end: 12, pgoff: 10 });
    expect(anonOf(s, C)).toBe(R);
    expect(vmasOf(s, mm)).toEqual([A, C]);
    clean(s);

    // Merge both sides: AAAAAAAAA*CCC -> one VMA.
    r = run(s, (c) => tryMergeNew(c, mm, 9, 10, 9));
    s = r.s;
    expect(r.out).toEqual({ vma: A, merged: true });
    expect(s.vmas[C]).toBeUndefined();

    // Final state: AAAAAAAAAAAA
    expect(vmasOf(s, mm)).toEqual([A]);
    expect(range(s, A)).toEqual({ start: 0, end: 12, pgoff: 0 });
    expect(anonOf(s, A)).toBe(R);
    expect(chainOf(s, A)).toEqual([R]);
    expect(counters(s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
    expect(treeVmas(s, R)).toEqual([A]);
    expect(Object.keys(s.avcs)).toHaveLength(1);
    expect(s.vmas[A]!.hasClose).toBe(true);
    clean(s);
  });

  it('test_vma_merge_special_flags: VM_SPECIAL forbids new-range and existing-range merges', () => {
    const SPECIAL = RW | VM_SPECIAL;
    const { s, mm, v } = layout({ left: { start: 0, end: 3, pgoff: 0 } });
    // 1. A new range that would merge with left but for VM_SPECIAL.
    const r1 = run(s, (c) => {
      c.s.vmas[v.left!]!.flags = SPECIAL;
      return mergeNew(c, mm, 3, 4, 3, SPECIAL);
    });
    expect(r1.out.vma).toBe(NIL);
    expect(r1.out.g.state).toBe('NOMERGE');
    expect(range(r1.s, v.left!)).toEqual({ start: 0, end: 3, pgoff: 0 });
    expect(vmasOf(r1.s, mm)).toEqual([v.left]);
    clean(r1.s);
    // Control: without the special flag the same range merges.
    const ctl = run(s, (c) => mergeNew(c, mm, 3, 4, 3));
    expect(ctl.out.vma).toBe(v.left);

    // 2. Modify an existing VMA with the special flag.
    const { s: s2, mm: mm2, v: v2 } = layout({ left: { start: 0, end: 3, pgoff: 0 }, vma: { start: 3, end: 4, pgoff: 3 } });
    const r2 = run(s2, (c) => {
      c.s.vmas[v2.left!]!.flags = SPECIAL;
      return mergeExisting(c, mm2, v2.left!, v2.vma!, 3, 4, 3, SPECIAL);
    });
    expect(r2.out.vma).toBe(NIL);
    expect(r2.out.g.state).toBe('NOMERGE');
    expect(vmasOf(r2.s, mm2)).toEqual([v2.left, v2.vma]);
    expect(range(r2.s, v2.vma!)).toEqual({ start: 3, end: 4, pgoff: 3 });
    clean(r2.s);
    // Control.
    const ctl2 = run(s2, (c) => mergeExisting(c, mm2, v2.left!, v2.vma!, 3, 4, 3));
    expect(ctl2.out.vma).toBe(v2.left);
  });

  describe('test_vma_merge_with_close', () => {
    it('new range between prev and a next with ->close: only prev is expanded', () => {
      // PPP**NNNN -> PPPPPNNNN
      const { s, mm, v } = layout({ prev: { start: 0, end: 3, pgoff: 0 }, next: { start: 5, end: 9, pgoff: 5, close: true } });
      const r = run(s, (c) => mergeNew(c, mm, 3, 5, 3));
      expect(r.out.vma).toBe(v.prev);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 5, pgoff: 0 });
      expect(range(r.s, v.next!)).toEqual({ start: 5, end: 9, pgoff: 5 });
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.next]);
      clean(r.s);
    });

    it('whole middle with ->close merging into prev: no merge', () => {
      // PPPVV
      const { s, mm, v } = layout({ prev: { start: 0, end: 3, pgoff: 0 }, vma: { start: 3, end: 5, pgoff: 3, close: true } });
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 5, 3));
      expect(r.out.vma).toBe(NIL);
      expect(r.out.g.state).toBe('NOMERGE');
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.vma]);
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 3, pgoff: 0 });
      clean(r.s);
    });

    it('whole middle with ->close merging into next: no merge (and NOMERGE, not NOMEM)', () => {
      // VVNNNN
      const { s, mm, v } = layout({ vma: { start: 3, end: 5, pgoff: 3, close: true }, next: { start: 5, end: 9, pgoff: 5 } });
      const r = run(s, (c) => mergeExisting(c, mm, NIL, v.vma!, 3, 5, 3));
      expect(r.out.vma).toBe(NIL);
      expect(r.out.g.state).toBe('NOMERGE');
      expect(vmasOf(r.s, mm)).toEqual([v.vma, v.next]);
      expect(range(r.s, v.next!)).toEqual({ start: 5, end: 9, pgoff: 5 });
      clean(r.s);
    });

    it('prev, middle with ->close, next: no merge', () => {
      // PPPVVNNNN
      const { s, mm, v } = layout({
        prev: { start: 0, end: 3, pgoff: 0 },
        vma: { start: 3, end: 5, pgoff: 3, close: true },
        next: { start: 5, end: 9, pgoff: 5 },
      });
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 5, 3));
      expect(r.out.vma).toBe(NIL);
      expect(r.out.g.state).toBe('NOMERGE');
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.vma, v.next]);
      clean(r.s);
    });

    it('prev, middle, next with ->close: reduced to a merge of prev and middle', () => {
      // PPPVVNNNN -> PPPPPNNNN
      const { s, mm, v } = layout({
        prev: { start: 0, end: 3, pgoff: 0 },
        vma: { start: 3, end: 5, pgoff: 3 },
        next: { start: 5, end: 9, pgoff: 5, close: true },
      });
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 5, 3));
      expect(r.out.vma).toBe(v.prev);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 5, pgoff: 0 });
      expect(range(r.s, v.next!)).toEqual({ start: 5, end: 9, pgoff: 5 });
      expect(r.s.vmas[v.vma!]).toBeUndefined();
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.next]);
      clean(r.s);
    });
  });

  it('test_vma_merge_new_with_close: prev and next with ->close: prev is expanded, next kept', () => {
    const { s, mm, v } = layout({ prev: { start: 0, end: 2, pgoff: 0, close: true }, next: { start: 5, end: 7, pgoff: 5, close: true } });
    const r = run(s, (c) => mergeNew(c, mm, 2, 5, 2));
    expect(r.out.vma).toBe(v.prev);
    expect(r.out.g.state).toBe('SUCCESS');
    expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 5, pgoff: 0 });
    expect(r.s.vmas[v.prev!]!.hasClose).toBe(true);
    expect(vmasOf(r.s, mm)).toEqual([v.prev, v.next]);
    clean(r.s);
  });

  describe('test_merge_existing (middle faulted on R with a singular chain)', () => {
    it('merge right, partial span: VVVVNNN -> VNNNNNN', () => {
      const { s, mm, v, a } = layout({
        vma: { start: 2, end: 6, pgoff: 2, close: true, anon: 'R' },
        next: { start: 6, end: 9, pgoff: 6, close: true },
      });
      const R = a.R!;
      const r = run(s, (c) => mergeExisting(c, mm, v.vma!, v.vma!, 3, 6, 3));
      expect(r.out.vma).toBe(v.next);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.next!)).toEqual({ start: 3, end: 9, pgoff: 3 });
      expect(anonOf(r.s, v.next!)).toBe(R);
      expect(chainOf(r.s, v.next!)).toEqual([R]);
      expect(range(r.s, v.vma!)).toEqual({ start: 2, end: 3, pgoff: 2 });
      expect(anonOf(r.s, v.vma!)).toBe(R);
      expect(vmasOf(r.s, mm)).toEqual([v.vma, v.next]);
      expect(counters(r.s, R)).toEqual({ children: 1, active: 2, ref: 1, freed: false });
      expect(treeVmas(r.s, R)).toEqual([v.vma, v.next]);
      clean(r.s);
    });

    it('merge right, full span: VVVVNNN -> NNNNNNN', () => {
      const { s, mm, v, a } = layout({
        vma: { start: 2, end: 6, pgoff: 2, anon: 'R' },
        next: { start: 6, end: 9, pgoff: 6, close: true },
      });
      const R = a.R!;
      const r = run(s, (c) => mergeExisting(c, mm, NIL, v.vma!, 2, 6, 2));
      expect(r.out.vma).toBe(v.next);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.next!)).toEqual({ start: 2, end: 9, pgoff: 2 });
      expect(anonOf(r.s, v.next!)).toBe(R);
      expect(r.s.vmas[v.vma!]).toBeUndefined();
      expect(vmasOf(r.s, mm)).toEqual([v.next]);
      expect(counters(r.s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
      expect(treeVmas(r.s, R)).toEqual([v.next]);
      clean(r.s);
    });

    it('merge left, partial span: PPPVVVV -> PPPPPPV', () => {
      const { s, mm, v, a } = layout({
        prev: { start: 0, end: 3, pgoff: 0, close: true },
        vma: { start: 3, end: 7, pgoff: 3, close: true, anon: 'R' },
      });
      const R = a.R!;
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 6, 3));
      expect(r.out.vma).toBe(v.prev);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 6, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(R);
      expect(range(r.s, v.vma!)).toEqual({ start: 6, end: 7, pgoff: 6 });
      expect(anonOf(r.s, v.vma!)).toBe(R);
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.vma]);
      expect(counters(r.s, R)).toEqual({ children: 1, active: 2, ref: 1, freed: false });
      expect(treeVmas(r.s, R)).toEqual([v.prev, v.vma]);
      clean(r.s);
    });

    it('merge left, full span: PPPVVVV -> PPPPPPP', () => {
      const { s, mm, v, a } = layout({
        prev: { start: 0, end: 3, pgoff: 0, close: true },
        vma: { start: 3, end: 7, pgoff: 3, anon: 'R' },
      });
      const R = a.R!;
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 7, 3));
      expect(r.out.vma).toBe(v.prev);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 7, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(R);
      expect(r.s.vmas[v.vma!]).toBeUndefined();
      expect(vmasOf(r.s, mm)).toEqual([v.prev]);
      expect(counters(r.s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
      clean(r.s);
    });

    it('merge both: PPPVVVVNN -> PPPPPPPPP', () => {
      const { s, mm, v, a } = layout({
        prev: { start: 0, end: 3, pgoff: 0, close: true },
        vma: { start: 3, end: 7, pgoff: 3, anon: 'R' },
        next: { start: 7, end: 9, pgoff: 7 },
      });
      const R = a.R!;
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 7, 3));
      expect(r.out.vma).toBe(v.prev);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 9, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(R);
      expect(chainOf(r.s, v.prev!)).toEqual([R]);
      expect(r.s.vmas[v.vma!]).toBeUndefined();
      expect(r.s.vmas[v.next!]).toBeUndefined();
      expect(vmasOf(r.s, mm)).toEqual([v.prev]);
      expect(counters(r.s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
      clean(r.s);
    });

    it('ranges touching neither edge of middle never merge', () => {
      // PPPVVVVVNN, ranges strictly inside V.
      const { s, mm, v } = layout({
        prev: { start: 0, end: 3, pgoff: 0 },
        vma: { start: 3, end: 8, pgoff: 3 },
        next: { start: 8, end: 10, pgoff: 8 },
      });
      for (const [start, end] of [
        [4, 5],
        [5, 6],
        [6, 7],
        [4, 7],
        [4, 6],
        [5, 6],
      ] as const) {
        const r = run(s, (c) => mergeExisting(c, mm, v.vma!, v.vma!, start, end, start));
        expect(r.out.vma, `[${start},${end})`).toBe(NIL);
        expect(r.out.g.state).toBe('NOMERGE');
        // Only the mmap lock taken and dropped around the attempt moved the mm's lock seqcount (twice).
        expect(r.s).toEqual(produce(s, (d) => void (d.mms[mm]!.lockSeq += 2)));
      }
    });
  });

  describe('test_anon_vma_non_mergeable: prev and next on different anon_vmas', () => {
    it('existing range: reverts to a merge of prev and middle', () => {
      // PPPVVVVNN -> PPPPPPPNN
      const { s, mm, v, a } = layout({
        prev: { start: 0, end: 3, pgoff: 0, anon: 'R1' },
        vma: { start: 3, end: 7, pgoff: 3 },
        next: { start: 7, end: 9, pgoff: 7, anon: 'R2' },
      });
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 7, 3));
      expect(r.out.vma).toBe(v.prev);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 7, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(a.R1);
      expect(range(r.s, v.next!)).toEqual({ start: 7, end: 9, pgoff: 7 });
      expect(anonOf(r.s, v.next!)).toBe(a.R2);
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.next]);
      expect(r.s.anonVmas[a.R2!]).toEqual(s.anonVmas[a.R2!]);
      clean(r.s);
    });

    it('new range: merges with prev only', () => {
      // PPP****NN -> PPPPPPPNN
      const { s, mm, v, a } = layout({
        prev: { start: 0, end: 3, pgoff: 0, anon: 'R1' },
        next: { start: 7, end: 9, pgoff: 7, anon: 'R2' },
      });
      const r = run(s, (c) => mergeNew(c, mm, 3, 7, 3));
      expect(r.out.vma).toBe(v.prev);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 7, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(a.R1);
      expect(range(r.s, v.next!)).toEqual({ start: 7, end: 9, pgoff: 7 });
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.next]);
      clean(r.s);
    });
  });

  describe('test_dup_anon_vma: the survivor gets (a clone of) the anon_vma', () => {
    it('vma_expand over a faulted next clones next into the target', () => {
      const { s, mm, v, a } = layout({ prev: { start: 0, end: 3, pgoff: 0 }, next: { start: 3, end: 5, pgoff: 3, anon: 'R' } });
      const R = a.R!;
      const r = run(s, (c) => {
        const g = vmg_state(c, mm, NIL, NIL, 0, 5, RW, 0);
        g.target = v.prev!;
        g.next = v.next!;
        return c.k.vma_expand(c, g);
      });
      expect(r.out).toBe(0);
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 5, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(R);
      expect(chainOf(r.s, v.prev!)).toEqual([R]);
      expect(r.s.vmas[v.next!]).toBeUndefined();
      expect(vmasOf(r.s, mm)).toEqual([v.prev]);
      // Cloned (+1) into prev, then next unlinked (-1).
      expect(counters(r.s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
      expect(r.allocLog).toEqual(['avc', 'prealloc']);
      clean(r.s);
    });

    it('merge both, next faulted: prev gets next\'s anon_vma; middle and next removed', () => {
      const { s, mm, v, a } = layout({
        prev: { start: 0, end: 3, pgoff: 0 },
        vma: { start: 3, end: 5, pgoff: 3 },
        next: { start: 5, end: 8, pgoff: 5, anon: 'R' },
      });
      const R = a.R!;
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 5, 3));
      expect(r.out.vma).toBe(v.prev);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 8, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(R);
      expect(chainOf(r.s, v.prev!)).toEqual([R]);
      expect(vmasOf(r.s, mm)).toEqual([v.prev]);
      expect(counters(r.s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
      clean(r.s);
    });

    it('merge both, middle faulted: prev gets middle\'s anon_vma', () => {
      const { s, mm, v, a } = layout({
        prev: { start: 0, end: 3, pgoff: 0 },
        vma: { start: 3, end: 5, pgoff: 3, anon: 'R' },
        next: { start: 5, end: 8, pgoff: 5 },
      });
      const R = a.R!;
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 5, 3));
      expect(r.out.vma).toBe(v.prev);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 8, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(R);
      expect(vmasOf(r.s, mm)).toEqual([v.prev]);
      expect(counters(r.s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
      clean(r.s);
    });

    it('merge left, partial: prev extended and cloned, middle shrunk keeping its anon_vma', () => {
      const { s, mm, v, a } = layout({ prev: { start: 0, end: 3, pgoff: 0 }, vma: { start: 3, end: 8, pgoff: 3, anon: 'R' } });
      const R = a.R!;
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 5, 3));
      expect(r.out.vma).toBe(v.prev);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 5, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(R);
      expect(range(r.s, v.vma!)).toEqual({ start: 5, end: 8, pgoff: 5 });
      expect(anonOf(r.s, v.vma!)).toBe(R);
      expect(counters(r.s, R)).toEqual({ children: 1, active: 2, ref: 1, freed: false });
      clean(r.s);
    });

    it('merge right, partial: next extended and cloned, middle shrunk', () => {
      const { s, mm, v, a } = layout({ vma: { start: 0, end: 5, pgoff: 0, anon: 'R' }, next: { start: 5, end: 8, pgoff: 5 } });
      const R = a.R!;
      const r = run(s, (c) => mergeExisting(c, mm, v.vma!, v.vma!, 3, 5, 3));
      expect(r.out.vma).toBe(v.next);
      expect(r.out.g.state).toBe('SUCCESS');
      expect(range(r.s, v.next!)).toEqual({ start: 3, end: 8, pgoff: 3 });
      expect(anonOf(r.s, v.next!)).toBe(R);
      expect(range(r.s, v.vma!)).toEqual({ start: 0, end: 3, pgoff: 0 });
      expect(counters(r.s, R)).toEqual({ children: 1, active: 2, ref: 1, freed: false });
      clean(r.s);
    });
  });

  describe('test_vmi_prealloc_fail: ENOMEM after the anon_vma dup unlinks the dup (§3.6 step 11, §3.8 step 7)', () => {
    it('existing-range merge: state ERROR_NOMEM, prev back to unfaulted, nothing else changed', () => {
      const { s, mm, v, a } = layout({ prev: { start: 0, end: 3, pgoff: 0 }, vma: { start: 3, end: 5, pgoff: 3, anon: 'R' } });
      const R = a.R!;
      // Allocation 1: the AVC of dup_anon_vma's clone; 2: commit_merge's vma_iter_prealloc.
      const r = run(s, (c) => mergeExisting(c, mm, v.prev!, v.vma!, 3, 5, 3), 2);
      expect(r.allocLog).toEqual(['avc', 'prealloc']);
      expect(r.out.vma).toBe(NIL);
      expect(r.out.g.state).toBe('ERROR_NOMEM');
      // The kernel harness's unlink stub leaves the pointer; the real
      // unlink_anon_vmas resets it (§2.6 step 5): prev is unfaulted again.
      expect(anonOf(r.s, v.prev!)).toBe(NIL);
      expect(chainOf(r.s, v.prev!)).toEqual([]);
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 3, pgoff: 0 });
      expect(range(r.s, v.vma!)).toEqual({ start: 3, end: 5, pgoff: 3 });
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.vma]);
      expect(counters(r.s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
      expect(treeVmas(r.s, R)).toEqual([v.vma]);
      clean(r.s);
    });

    it('vma_expand: -ENOMEM, state ERROR_NOMEM, dup unlinked', () => {
      const { s, mm, v, a } = layout({ prev: { start: 0, end: 3, pgoff: 0 }, vma: { start: 3, end: 5, pgoff: 3, anon: 'R' } });
      const R = a.R!;
      const r = run(
        s,
        (c) => {
          const g = vmg_state(c, mm, NIL, NIL, 0, 5, RW, 0);
          g.target = v.prev!;
          g.next = v.vma!;
          return { ret: c.k.vma_expand(c, g), g };
        },
        2,
      );
      expect(r.out.ret).toBe(ENOMEM);
      expect(r.out.g.state).toBe('ERROR_NOMEM');
      expect(anonOf(r.s, v.prev!)).toBe(NIL);
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.vma]);
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 3, pgoff: 0 });
      expect(counters(r.s, R)).toEqual({ children: 1, active: 1, ref: 1, freed: false });
      clean(r.s);
    });
  });

  // The kernel's vma_merge_extend (mm/vma.c) sets only vmg.next and
  // middle = NULL and calls vma_merge_new_range, which merges both sides;
  // its own test_merge_extend expects [0,1) + 2 pages to swallow [3,4).
  // (An earlier model set just_expand here and missed this merge.)
  it('test_merge_extend: extending [0,1) by 2 pages swallows the adjacent [3,4)', () => {
    const { s, mm, v } = layout({ vma: { start: 0, end: 1, pgoff: 0 }, other: { start: 3, end: 4, pgoff: 3 } });
    const r = run(s, (c) => c.k.vma_merge_extend(c, v.vma!, 2));
    expect(r.out).toBe(v.vma);
    expect(range(r.s, v.vma!)).toEqual({ start: 0, end: 4, pgoff: 0 });
    expect(vmasOf(r.s, mm)).toEqual([v.vma]);
    clean(r.s);
  });

  // The same from the syscall layer: mremap's in-place expansion up to an
  // adjacent, compatible VMA leaves one VMA.
  it('mremap in-place expand up to a compatible next merges with it (vma_merge_extend, §3.7)', () => {
    const m = createMmModel({ bounds: { procs: 1, pages: 8, maxLen: 4 } });
    let s = m.initial();
    for (const t of ['P0 mmap 0 1', 'P0 mmap 3 1', 'P0 mremap 0 1 0 3']) s = m.next(s, m.parseAction(s, t));
    expect(vmasOf(s, 0).map((id) => range(s, id))).toEqual([{ start: 0, end: 4, pgoff: 0 }]);
  });

  it('test_merge_extend without a next: extending [0,1) by 2 pages', () => {
    const { s, mm, v } = layout({ vma: { start: 0, end: 1, pgoff: 0 }, other: { start: 4, end: 5, pgoff: 4 } });
    const r = run(s, (c) => c.k.vma_merge_extend(c, v.vma!, 2));
    expect(r.out).toBe(v.vma);
    expect(range(r.s, v.vma!)).toEqual({ start: 0, end: 3, pgoff: 0 });
    expect(vmasOf(r.s, mm)).toEqual([v.vma, v.other]);
    clean(r.s);
  });

  describe('copy_vma merges of a faulted source (mremap, the four cases of §3.8)', () => {
    // The source C [6,7) is faulted on its own root R with pgoff 2, so its
    // copy to [2,3) keeps pgoff 2 and is linear with prev [0,2) pgoff 0 and
    // next [3,5) pgoff 3.
    const base = { C: { start: 6, end: 7, pgoff: 2, anon: 'R' } };

    it('(1) unfaulted prev: target prev, dup(prev, C)', () => {
      const { s, mm, v, a } = layout({ prev: { start: 0, end: 2, pgoff: 0 }, ...base });
      const r = run(s, (c) => c.k.copy_vma(c, v.C!, 2, 1, 2));
      expect(r.out).toEqual({ newVma: v.prev, vma: v.C, needRmapLocks: true });
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 3, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(a.R);
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.C]);
      expect(counters(r.s, a.R!)).toEqual({ children: 1, active: 2, ref: 1, freed: false });
      clean(r.s);
    });

    it('(2) unfaulted next: target next, dup(next, C)', () => {
      const { s, mm, v, a } = layout({ next: { start: 3, end: 5, pgoff: 3 }, ...base });
      const r = run(s, (c) => c.k.copy_vma(c, v.C!, 2, 1, 2));
      expect(r.out).toEqual({ newVma: v.next, vma: v.C, needRmapLocks: true });
      expect(range(r.s, v.next!)).toEqual({ start: 2, end: 5, pgoff: 2 });
      expect(anonOf(r.s, v.next!)).toBe(a.R);
      expect(vmasOf(r.s, mm)).toEqual([v.next, v.C]);
      clean(r.s);
    });

    it('(3) both unfaulted: target prev, next removed, dup(prev, C)', () => {
      const { s, mm, v, a } = layout({ prev: { start: 0, end: 2, pgoff: 0 }, next: { start: 3, end: 5, pgoff: 3 }, ...base });
      const r = run(s, (c) => c.k.copy_vma(c, v.C!, 2, 1, 2));
      expect(r.out?.newVma).toBe(v.prev);
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 5, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(a.R);
      expect(r.s.vmas[v.next!]).toBeUndefined();
      expect(vmasOf(r.s, mm)).toEqual([v.prev, v.C]);
      expect(counters(r.s, a.R!)).toEqual({ children: 1, active: 2, ref: 1, freed: false });
      clean(r.s);
    });

    it('(4) unfaulted prev, next faulted on the same anon_vma: one dup(prev, next)', () => {
      const { s, mm, v, a } = layout({ prev: { start: 0, end: 2, pgoff: 0 }, next: { start: 3, end: 5, pgoff: 3, anon: 'R' }, ...base });
      const r = run(s, (c) => c.k.copy_vma(c, v.C!, 2, 1, 2));
      expect(r.out?.newVma).toBe(v.prev);
      expect(range(r.s, v.prev!)).toEqual({ start: 0, end: 5, pgoff: 0 });
      expect(anonOf(r.s, v.prev!)).toBe(a.R);
      expect(chainOf(r.s, v.prev!)).toEqual([a.R]);
      expect(r.s.vmas[v.next!]).toBeUndefined();
      expect(counters(r.s, a.R!)).toEqual({ children: 1, active: 2, ref: 1, freed: false });
      clean(r.s);
    });

    it('a fork-child source never merges into an unfaulted neighbour: a new VMA cloned with REMAP', () => {
      // C's chain is [A, R] (A a child of R, as after a fork).
      const b = new ScenarioBuilder();
      const mm = b.mm();
      const R = b.anonVma();
      const A = b.anonVma({ parent: R });
      const prev = b.vma(mm, { start: 0, end: 2, pgoff: 0 });
      const C = b.vma(mm, { start: 6, end: 7, pgoff: 2 });
      b.linkAll(C, [R, A]);
      b.setAnon(C, A);
      // R's tree must be non-empty for a consistent state: another VMA of R.
      const other = b.vma(mm, { start: 9, end: 10, pgoff: 9 });
      b.link(other, R);
      b.setAnon(other, R);
      b.fillCounters();
      const s = b.build();
      clean(s);
      const r = run(s, (c) => c.k.copy_vma(c, C, 2, 1, 2));
      const n = r.out!.newVma;
      expect(n).not.toBe(prev);
      expect(r.out!.needRmapLocks).toBe(false);
      expect(range(r.s, prev)).toEqual({ start: 0, end: 2, pgoff: 0 });
      expect(anonOf(r.s, prev)).toBe(NIL);
      expect(range(r.s, n)).toEqual({ start: 2, end: 3, pgoff: 2 });
      expect(anonOf(r.s, n)).toBe(A);
      // REMAP clone: reverse list order of the source (§2.4).
      expect(chainOf(r.s, n)).toEqual([R, A]);
      expect(vmasOf(r.s, mm)).toEqual([prev, n, C, other]);
      clean(r.s);
    });
  });

  it('test_expand_only_mode: just_expand grows prev only, ignoring the VMA before it', () => {
    const { s, mm, v } = layout({ first: { start: 0, end: 2, pgoff: 0 }, prev: { start: 3, end: 5, pgoff: 3 } });
    const r = run(s, (c) => {
      const g = vmg_state(c, mm, v.prev!, NIL, 5, 9, RW, 5);
      g.justExpand = true;
      return { vma: c.k.vma_merge_new_range(c, g), g };
    });
    expect(r.out.vma).toBe(v.prev);
    expect(r.out.g.state).toBe('SUCCESS');
    expect(range(r.s, v.prev!)).toEqual({ start: 3, end: 9, pgoff: 3 });
    expect(range(r.s, v.first!)).toEqual({ start: 0, end: 2, pgoff: 0 });
    expect(vmasOf(r.s, mm)).toEqual([v.first, v.prev]);
    clean(r.s);
  });
});

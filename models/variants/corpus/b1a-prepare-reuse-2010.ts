// B1a (bug-corpus.md) and seed 001: before d0e9fe1758f2 (April 2010), the
// first fault of a VMA adopted a compatible neighbour's anon_vma whatever
// the neighbour's chain held, so two VMAs could share ->anon_vma with
// different chains; a merge that kept the singleton one dropped the other's
// parent anon_vmas from the rmap.
//
// seed 001 is Johannes Weiner's answer to that state: anon_vma_merge() moves
// the removed VMA's extra AVCs to the survivor when the survivor's chain is a
// singleton. The two seed-001 variants keep the 2010 reuse and differ only in
// what the merge does with the removed VMA's chain.
import { avc, vma, warn } from '../../mm/ctx.ts';
import type { Ctx } from '../../mm/ctx.ts';
import type { Kernel } from '../../mm/kernel.ts';
import { NIL, type Id } from '../../mm/state.ts';
import type { Variant } from '../registry.ts';

/** reusable_anon_vma without the list_is_singular test. */
const reuseWithoutSingularRule = (base: Kernel): Partial<Kernel> => ({
  reusable_anon_vma(c, oldId, aId, bId) {
    if (!c.k.anon_vma_compatible(c, aId, bId)) return NIL;
    return vma(c, oldId).anonVma;
  },
  check_anon_vma_clone(c, dst, src, op) {
    // The 2010 kernel had no such asserts; keep the others.
    if (op !== 'MERGE_UNFAULTED') base.check_anon_vma_clone(c, dst, src, op);
  },
});

export const b1aPrepareReuse2010: Variant = {
  name: 'b1a-prepare-reuse-2010',
  base: 'mainline',
  description: 'B1a: anon_vma_prepare adopts a neighbour anon_vma without the singular-chain rule (before d0e9fe1758f2)',
  overrides: reuseWithoutSingularRule,
};

/**
 * anon_vma_merge as proposed in seed 001: if the survivor's chain is a
 * singleton, move the removed VMA's AVCs to other anon_vmas over to the
 * survivor (re-keyed in their trees), then unlink what is left.
 */
function anonVmaMergeSeed001(c: Ctx, survivor: Id, removed: Id, reinsertLater: boolean): void {
  const s = vma(c, survivor);
  const r = vma(c, removed);
  if (s.anonVma !== r.anonVma) warn(c, 'anon_vma_merge: vma->anon_vma != next->anon_vma');
  if (s.chain.length !== 1) return;
  for (const id of [...r.chain]) {
    const a = avc(c, id);
    if (a.anonVma === s.anonVma) continue;
    // Re-keyed to the survivor: vma_complete's post-update reinserts the
    // survivor's AVCs when it holds the anon lock; otherwise insert here.
    c.k.anon_vma_interval_tree_remove(c, id, a.anonVma);
    a.vma = survivor;
    r.chain = r.chain.filter((x) => x !== id);
    s.chain = [...s.chain, id];
    if (!reinsertLater) c.k.anon_vma_interval_tree_insert(c, id, a.anonVma);
  }
}

export const seed001MergeDropsChain: Variant = {
  name: 'seed001-merge-drops-chain',
  base: 'b1a-prepare-reuse-2010',
  description: 'seed 001, before the fix: 2010 reuse, and a merge simply unlinks the removed VMA (its parent anon_vmas are lost)',
  overrides: () => ({}),
};

export const seed001AnonVmaMerge: Variant = {
  name: 'seed001-anon-vma-merge',
  base: 'b1a-prepare-reuse-2010',
  description: "seed 001, Johannes Weiner's anon_vma_merge: the removed VMA's extra AVCs move to a singleton survivor",
  overrides: (base) => ({
    vma_complete(c, vp) {
      for (const removed of [vp.remove, vp.remove2]) if (removed !== NIL && vma(c, removed).anonVma !== NIL) anonVmaMergeSeed001(c, vp.vma, removed, vp.anonVma !== NIL);
      base.vma_complete(c, vp);
    },
  }),
};

// MREMAP_RELOCATE_ANON, Lorenzo Stoakes' RFC (seed 002; bug-corpus.md B4;
// digest §4): never merged. On a move of an unforked, exclusively mapped
// anonymous range, the destination gets pgoff = its address and a fresh
// anon_vma, and each folio's mapping and index are rewritten under the folio
// lock while the new anon_vma is write-locked, so the moved VMA merges like
// an unfaulted one. Written as overrides of mainline mremap.c/vma.c
// functions, the way the patch changes them; the variants differ in the
// sharing test and in what relocate_anon_pte does with a shared or pinned
// folio.
import { av, folio, mm, vma, warn, type Ctx } from '../../mm/ctx.ts';
import type { Kernel } from '../../mm/kernel.ts';
import { anon_vma_lock_write, anon_vma_unlock_write, folio_lock, folio_unlock, pte_lock, pte_unlock } from '../../mm/locks.ts';
import { EINVAL, type Pmc, type Vrm } from '../../mm/mremap.ts';
import { ENOMEM } from '../../mm/rmap.ts';
import { linearPageIndex, NIL, RECORD, VM_SPECIAL, ZERO_PAGE, type Id } from '../../mm/state.ts';
import { vma_prev_of, vmg_state } from '../../mm/vma.ts';
import type { Variant } from '../registry.ts';

export interface RelocateRules {
  /** should_relocate_anon's sharing test: true when the VMA's folios may be shared (no relocation). */
  maybeShared(c: Ctx, vmaId: Id): boolean;
  /** relocate_anon_pte on a folio that may be mapped shared: RFC v2 WARNs and skips it; later versions fail the relocation (fall back). */
  sharedFolio: 'warn-skip' | 'fail';
  /** ... and on a maybe-DMA-pinned folio: RFC v2 skips it; later versions fail the relocation. */
  pinnedFolio: 'skip' | 'fail';
}

/** vma_had_uncowed_parents (RFC v2; now vma_is_fork_child): a multi-entry chain. */
export function vma_had_uncowed_parents(c: Ctx, vmaId: Id): boolean {
  const v = vma(c, vmaId);
  return v.anonVma !== NIL && v.chain.length !== 1;
}

/** vma_had_uncowed_children (RFC v2): num_children > 1, read under the mmap lock. */
export function vma_had_uncowed_children(c: Ctx, vmaId: Id): boolean {
  const a = vma(c, vmaId).anonVma;
  return a !== NIL && av(c, a, 'vma_had_uncowed_children').numChildren > 1;
}

/** vma_maybe_has_shared_anon_folios (RFC v3 / v1): a fork child, or more children than the self link of a root. */
export function vma_maybe_has_shared_anon_folios(c: Ctx, vmaId: Id): boolean {
  const a = vma(c, vmaId).anonVma;
  if (a === NIL) return false;
  if (vma_had_uncowed_parents(c, vmaId)) return true;
  const anon = av(c, a, 'vma_maybe_has_shared_anon_folios');
  return anon.numChildren > (anon.root === a ? 1 : 0);
}

/**
 * folio_maybe_mapped_shared (mm.h): a small folio mapped more than once; a
 * large folio mapped by more than one mm (the mm_id tracking, §1.5).
 */
function folio_maybe_mapped_shared(c: Ctx, f: Id): boolean {
  const fo = folio(c, f);
  if (fo.nrPages === 1) return fo.mapcount > 1;
  let mms = 0;
  for (const key in c.s.mms) {
    const ptes = c.s.mms[key]!.ptes;
    if (ptes.some((pte) => pte?.folio === f)) mms++;
  }
  return mms > 1;
}

/** relocate_anon_pte (RFC mremap.c): 1 = go on, 0 = the relocation fails. */
function relocate_anon_pte(c: Ctx, p: Pmc, oldAddr: number, newAddr: number, undo: boolean, rules: RelocateRules): number {
  const oldVma = vma(c, p.old);
  const pte = mm(c, oldVma.mm).ptes[oldAddr];
  if (pte === undefined || pte.folio === ZERO_PAGE) return 1; // vm_normal_folio: none for the zero page
  const f = pte.folio;
  folio_lock(c, f);
  let ret = 1;
  const fo = folio(c, f);
  if (fo.anonVma === NIL) {
    // not anon: nothing to do
  } else if (folio_maybe_mapped_shared(c, f)) {
    if (rules.sharedFolio === 'warn-skip') warn(c, 'relocate_anon_pte: folio_maybe_mapped_shared');
    else ret = 0;
  } else if (fo.pinned) {
    if (rules.pinnedFolio === 'fail') ret = 0;
  } else if (fo.nrPages > 1) {
    ret = 0;
  } else {
    // What relocation needs (bug-corpus B4): the folio is mapped exactly once, by this VMA.
    if (!undo && fo.mapcount !== 1) warn(c, `${RECORD.relocateShared} F${f} relocated with mapcount ${fo.mapcount}`);
    const target = undo ? p.old : p.new;
    const index = undo ? linearPageIndex(vma(c, p.old), oldAddr) : linearPageIndex(vma(c, p.new), newAddr);
    c.k.folio_move_anon_rmap(c, f, target);
    folio(c, f).index = index;
  }
  folio_unlock(c, f);
  return ret;
}

/** relocate_anon_folios (RFC mremap.c): every present PTE of the old range, under its PTL. */
function relocate_anon_folios(c: Ctx, p: Pmc, undo: boolean, rules: RelocateRules): boolean {
  if (p.len === 0) return true;
  const m = vma(c, p.old).mm;
  pte_lock(c, m);
  let ok = true;
  for (let i = 0; i < p.len && ok; i++) {
    if (mm(c, m).ptes[p.oldAddr + i] === undefined) continue;
    ok = relocate_anon_pte(c, p, p.oldAddr + i, p.newAddr + i, undo, rules) !== 0;
  }
  pte_unlock(c, m);
  return ok;
}

/** has_shared_anon_vma (RFC mremap.c): the old VMA's root is the one already locked for relocation. */
function has_shared_anon_vma(c: Ctx, p: Pmc): boolean {
  if (p.relocateLocked === undefined || p.relocateLocked === NIL) return false;
  const oldAnon = vma(c, p.old).anonVma;
  const lockedAnon = vma(c, p.relocateLocked).anonVma;
  return oldAnon !== NIL && lockedAnon !== NIL && av(c, oldAnon, 'has_shared_anon_vma').root === av(c, lockedAnon, 'has_shared_anon_vma').root;
}

/** should_relocate_anon (RFC mremap.c): requested, anonymous, not special, faulted, and not maybe shared. */
function should_relocate_anon(c: Ctx, vrm: Vrm, rules: RelocateRules): boolean {
  if (!vrm.flags.relocate) return false;
  const old = vma(c, vrm.vma);
  if ((old.flags & VM_SPECIAL) !== 0) return false;
  if (old.anonVma === NIL) return false;
  return !rules.maybeShared(c, vrm.vma);
}

export function relocateVariant(name: string, description: string, rules: RelocateRules): Variant {
  return {
    name,
    base: 'mainline',
    description,
    overrides: (base: Kernel) => ({
      // check_mremap_params: the flag exists, and needs MREMAP_MAYMOVE.
      check_mremap_params(c, vrm) {
        if (vrm.flags.relocate && !vrm.flags.maymove) return EINVAL;
        return base.check_mremap_params(c, { ...vrm, flags: { ...vrm.flags, relocate: false } });
      },
      // maybe_take_rmap_locks: skip the old VMA's lock when it is the root already held for relocation.
      take_rmap_locks(c, p) {
        if (!has_shared_anon_vma(c, p)) base.take_rmap_locks(c, p);
      },
      drop_rmap_locks(c, p) {
        if (!has_shared_anon_vma(c, p)) base.drop_rmap_locks(c, p);
      },
      copy_vma_and_data(c, vrm) {
        const v = vma(c, vrm.vma);
        const newPgoff = v.pgoff + (vrm.addr - v.start);
        const relocate = { on: should_relocate_anon(c, vrm, rules) };
        for (;;) {
          const r = c.k.copy_vma(c, vrm.vma, vrm.newAddr, vrm.newLen, newPgoff, relocate);
          if (r === null) return { err: ENOMEM, newVma: NIL };
          vrm.vma = r.vma;
          const pmc: Pmc = { old: r.vma, new: r.newVma, oldAddr: vrm.addr, newAddr: vrm.newAddr, len: vrm.oldLen, needRmapLocks: r.needRmapLocks, relocateLocked: NIL };
          if (relocate.on) {
            // lock_new_anon_vma
            anon_vma_lock_write(c, vma(c, r.newVma).anonVma);
            pmc.relocateLocked = r.newVma;
            if (!relocate_anon_folios(c, pmc, false, rules)) {
              relocate_anon_folios(c, pmc, true, rules);
              anon_vma_unlock_write(c, vma(c, r.newVma).anonVma);
              c.k.do_vmi_munmap(c, vrm.mm, vrm.newAddr, vrm.newLen, false);
              relocate.on = false;
              continue;
            }
          }
          const moved = c.k.move_page_tables(c, pmc);
          const err = moved < vrm.oldLen ? ENOMEM : 0;
          let newVma = r.newVma;
          if (err !== 0 && relocate.on) {
            relocate_anon_folios(c, pmc, true, rules);
            anon_vma_unlock_write(c, vma(c, r.newVma).anonVma);
          } else if (relocate.on) {
            anon_vma_unlock_write(c, vma(c, r.newVma).anonVma);
            // Let's try merge again: VMG_VMA_STATE over the new VMA and its prev.
            const nv = vma(c, r.newVma);
            const g = vmg_state(c, nv.mm, vma_prev_of(c, nv.mm, vrm.newAddr), r.newVma, vrm.newAddr, vrm.newAddr + vrm.newLen, nv.flags, nv.pgoff);
            const merged = c.k.vma_merge_existing_range(c, g);
            if (merged !== NIL) newVma = merged;
          }
          // The error fallback is mainline's: move the page tables back, unmap the new area.
          return c.k.copy_vma_and_data_finish(c, vrm, newVma, moved);
        }
      },
    }),
  };
}

export const relocateRfcV2 = relocateVariant('relocate-rfc-v2', 'MREMAP_RELOCATE_ANON as posted in RFC v2 (uncowed parents, then num_children > 1)', {
  maybeShared: (c, v) => vma_had_uncowed_parents(c, v) || vma_had_uncowed_children(c, v),
  sharedFolio: 'warn-skip',
  pinnedFolio: 'skip',
});

export const relocateChildrenOnly = relocateVariant('relocate-children-only', 'RFC v2 with only the children test (num_children > 1), the case raised in review', {
  maybeShared: (c, v) => vma_had_uncowed_children(c, v),
  sharedFolio: 'warn-skip',
  pinnedFolio: 'skip',
});

export const relocateV3 = relocateVariant('relocate-v3', 'RFC v3: vma_maybe_has_shared_anon_folios; shared or pinned folios make the relocation fall back', {
  maybeShared: (c, v) => vma_maybe_has_shared_anon_folios(c, v),
  sharedFolio: 'fail',
  pinnedFolio: 'fail',
});

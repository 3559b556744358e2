// MREMAP_RELOCATE_ANON, Lorenzo Stoakes' RFC (seed 002; bug-corpus.md B4;
// digest §4): never merged. On a move of an unforked, exclusively mapped
// anonymous range, the destination gets pgoff = its address and a fresh
// anon_vma, and each folio's mapping and index are rewritten under the folio
// lock while the new anon_vma is write-locked, so the moved VMA merges like
// an unfaulted one. Written as overrides of mainline mremap.c/vma.c
// functions, the way the patch changes them; the variants differ in the
// sharing test and in what relocate_anon_pte does with a shared or pinned
// folio.
//
// At lock granularity the RFC's copy_vma_and_data is cut like mainline's
// (mremap.ts, sched.ts), at each lock another thread can hold, by lock
// points of its own whose steps the variant registers (`steps`):
//   copy_vma | lock_new_anon_vma [new anon_vma write] | relocate_anon_ptes [PTL]
//   | relocate_anon_pte [folio lock], one per present folio | move_page_tables
//   [| move_ptes, mainline's, when the rmap locks are needed] | the rest
// The undo after a failed relocation or a short move walks the same points.
import { av, folio, pteR, vma, vmaR, warn, type Ctx } from '../../mm/ctx.ts';
import type { Kernel } from '../../mm/kernel.ts';
import { anon_vma_lock_write, anon_vma_unlock_write, folio_lock, folio_unlock, pte_lock, pte_unlock } from '../../mm/locks.ts';
import { EINVAL, moveLocals, restoreMove, type Pmc, type Vrm } from '../../mm/mremap.ts';
import { copy_vma_and_data_return } from '../../mm/resume.ts';
import { ENOMEM } from '../../mm/rmap.ts';
import { lock_point, type Locals, type Step } from '../../mm/sched.ts';
import { linearPageIndex, NIL, RECORD, VM_SPECIAL, ZERO_PAGE, type Id, type Thread } from '../../mm/state.ts';
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

/** relocate_anon_pte (RFC mremap.c) from the folio lock on, for the folio f vm_normal_folio found: 1 = go on, 0 = the relocation fails. */
function relocate_anon_pte(c: Ctx, p: Pmc, f: Id, oldAddr: number, newAddr: number, undo: boolean, rules: RelocateRules): number {
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

/** Where the relocation is: relocating, or undoing it (after a failed relocation, then a plain move; after a short page-table move). */
const RELOCATE = 0;
const UNDO_RETRY = 1;
const UNDO_MOVED = 2;

/** copy_vma_and_data's locals in the RFC: mainline's move (vrm, new VMA, pmc, pages moved) and the relocation's. */
interface Relocation {
  vrm: Vrm;
  newVma: Id;
  pmc: Pmc;
  moved: number;
  /** relocate_anon: the folios are relocated to the new VMA's anon_vma. */
  on: boolean;
  phase: number;
  /** relocate_anon_ptes' cursor: the page of the moved range it is at. */
  i: number;
}

type Moved = { err: number; newVma: Id };

/** What a lock point of the relocation saves: mainline's move (mremap.ts moveLocals), then on, locked, phase, cursor. */
function relocationLocals(m: Relocation): Locals {
  const { vmas, nums } = moveLocals(m.vrm, m.newVma, m.pmc, m.moved);
  return { vmas, nums: [...nums, m.on ? 1 : 0, m.pmc.relocateLocked === NIL ? 0 : 1, m.phase, m.i] };
}

function restoreRelocation(t: Thread): Relocation {
  const { vrm, newVma, pmc, moved } = restoreMove(t.proc, t.vmas, t.nums);
  const [on, locked, phase, i] = t.nums.slice(-4) as [number, number, number, number];
  pmc.relocateLocked = locked === 1 ? newVma : NIL;
  return { vrm, newVma, pmc, moved, on: on === 1, phase, i };
}

/** The RFC's copy_vma_and_data, cut at its lock points, and the steps that resume there. */
function relocationPath(rules: RelocateRules): { copy_vma_and_data: (c: Ctx, vrm: Vrm) => Moved; steps: Record<string, Step> } {
  /** copy_vma_and_data (RFC mremap.c) from copy_vma: the retry after a failed relocation starts here again, without it. */
  function copy_vma_and_data_again(c: Ctx, vrm: Vrm, on: boolean): Moved {
    const v = vmaR(c, vrm.vma);
    const newPgoff = v.pgoff + (vrm.addr - v.start);
    const relocate = { on };
    const r = c.k.copy_vma(c, vrm.vma, vrm.newAddr, vrm.newLen, newPgoff, relocate);
    if (r === null) return { err: ENOMEM, newVma: NIL };
    vrm.vma = r.vma;
    const pmc: Pmc = { old: r.vma, new: r.newVma, oldAddr: vrm.addr, newAddr: vrm.newAddr, len: vrm.oldLen, needRmapLocks: r.needRmapLocks, relocateLocked: NIL };
    const m: Relocation = { vrm, newVma: r.newVma, pmc, moved: 0, on: relocate.on, phase: RELOCATE, i: 0 };
    if (!m.on) return move(c, m);
    // The new VMA's anon_vma may be a neighbour's that __anon_vma_prepare adopted: walkers can hold it.
    lock_point(c, 'lock_new_anon_vma', relocationLocals(m));
    return lock_new_anon_vma(c, m);
  }

  /** lock_new_anon_vma (RFC mremap.c), then the relocation. */
  function lock_new_anon_vma(c: Ctx, m: Relocation): Moved {
    anon_vma_lock_write(c, vmaR(c, m.newVma).anonVma);
    m.pmc.relocateLocked = m.newVma;
    return relocate_anon_folios(c, m);
  }

  /** relocate_anon_folios (RFC mremap.c): every present PTE of the old range, under its PTL (undoing the relocation past RELOCATE). */
  function relocate_anon_folios(c: Ctx, m: Relocation): Moved {
    m.i = 0;
    if (m.pmc.len === 0) return relocated(c, m, true);
    lock_point(c, 'relocate_anon_ptes', relocationLocals(m));
    return relocate_anon_ptes(c, m);
  }

  /** relocate_anon_ptes (RFC mremap.c): the old range's PTL, then its PTEs. */
  function relocate_anon_ptes(c: Ctx, m: Relocation): Moved {
    pte_lock(c, vmaR(c, m.pmc.old).mm);
    return relocate_anon_ptes_from(c, m);
  }

  /** relocate_anon_ptes' loop from the cursor on: each present folio under its folio lock, then the PTL dropped. */
  function relocate_anon_ptes_from(c: Ctx, m: Relocation): Moved {
    const p = m.pmc;
    const mmId = vmaR(c, p.old).mm;
    let ok = true;
    for (; m.i < p.len && ok; m.i++) {
      const pte = pteR(c, mmId, p.oldAddr + m.i);
      if (pte === undefined || pte.folio === ZERO_PAGE) continue; // vm_normal_folio: none for the zero page
      lock_point(c, 'relocate_anon_pte', relocationLocals(m));
      ok = relocate_anon_pte(c, p, pte.folio, p.oldAddr + m.i, p.newAddr + m.i, m.phase !== RELOCATE, rules) !== 0;
    }
    pte_unlock(c, mmId);
    return relocated(c, m, ok);
  }

  /** Where relocate_anon_folios returns to in copy_vma_and_data (RFC), by phase. */
  function relocated(c: Ctx, m: Relocation, ok: boolean): Moved {
    m.i = 0;
    if (m.phase === RELOCATE) {
      if (ok) return move(c, m);
      // Undo if fails.
      m.phase = UNDO_RETRY;
      return relocate_anon_folios(c, m);
    }
    anon_vma_unlock_write(c, vmaR(c, m.newVma).anonVma);
    m.pmc.relocateLocked = NIL;
    if (m.phase === UNDO_MOVED) return finish(c, m);
    c.k.do_vmi_munmap(c, m.vrm.mm, m.vrm.newAddr, m.vrm.newLen, false);
    return copy_vma_and_data_again(c, m.vrm, false);
  }

  /** move_page_tables, which starts at the rmap locks or the PTL. */
  function move(c: Ctx, m: Relocation): Moved {
    lock_point(c, 'move_page_tables', relocationLocals(m));
    m.moved = c.k.move_page_tables(c, m.pmc);
    return moved(c, m);
  }

  /** copy_vma_and_data (RFC) after move_page_tables: undo a relocation on a short move, else unlock and merge again. */
  function moved(c: Ctx, m: Relocation): Moved {
    if (m.on && m.moved < m.vrm.oldLen) {
      m.phase = UNDO_MOVED;
      return relocate_anon_folios(c, m);
    }
    if (m.on) {
      anon_vma_unlock_write(c, vmaR(c, m.newVma).anonVma);
      m.pmc.relocateLocked = NIL;
      // Let's try merge again: VMG_VMA_STATE over the new VMA and its prev.
      const { vrm } = m;
      const nv = vmaR(c, m.newVma);
      const g = vmg_state(c, nv.mm, vma_prev_of(c, nv.mm, vrm.newAddr), m.newVma, vrm.newAddr, vrm.newAddr + vrm.newLen, nv.flags, nv.pgoff);
      const merged = c.k.vma_merge_existing_range(c, g);
      if (merged !== NIL) m.newVma = merged;
    }
    return finish(c, m);
  }

  /** The error fallback is mainline's (move the page tables back, unmap the new area); it starts at the unmap's locks. */
  function finish(c: Ctx, m: Relocation): Moved {
    lock_point(c, 'copy_vma_and_data_finish', relocationLocals(m));
    return c.k.copy_vma_and_data_finish(c, m.vrm, m.newVma, m.moved);
  }

  /**
   * A step resuming at a lock point of the path: the rest of
   * copy_vma_and_data from there, then of its callers. `reenter` names the
   * lock point when the rest starts in the function holding it, before it
   * (passed once: c.resumeAt).
   */
  const resume =
    (rest: (c: Ctx, m: Relocation) => Moved, reenter?: string): Step =>
    (c, t) => {
      const m = restoreRelocation(t);
      if (reenter !== undefined) c.resumeAt = reenter;
      return copy_vma_and_data_return(c, t, m.vrm, rest(c, m));
    };
  const steps: Record<string, Step> = {
    lock_new_anon_vma: resume(lock_new_anon_vma),
    relocate_anon_ptes: resume(relocate_anon_ptes),
    relocate_anon_pte: resume(relocate_anon_ptes_from, 'relocate_anon_pte'),
    move_page_tables: resume(move, 'move_page_tables'),
    // mainline's lock point in move_ptes (the rmap locks taken, the PTL next), on the RFC's path.
    move_ptes: resume((c, m) => {
      c.k.move_ptes_pte_locked(c, m.pmc);
      m.moved = m.pmc.len;
      return moved(c, m);
    }),
    copy_vma_and_data_finish: resume(finish, 'copy_vma_and_data_finish'),
  };
  return { copy_vma_and_data: (c, vrm) => copy_vma_and_data_again(c, vrm, should_relocate_anon(c, vrm, rules)), steps };
}

export function relocateVariant(name: string, description: string, rules: RelocateRules): Variant {
  const path = relocationPath(rules);
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
      copy_vma_and_data: path.copy_vma_and_data,
    }),
    steps: path.steps,
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

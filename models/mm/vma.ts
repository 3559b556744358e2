// mm/vma.c: mergeability, anon_vma reuse at fault time, merge of new and
// existing ranges, expand, split, shrink, modify, copy (for mremap), and the
// VMA tree of an mm. Digest §2.3 and §3.
import { allocOk, avR, insert, remove, mm, mmVmas, peek, vma, vmaR, warn, type Ctx } from './ctx.ts';
import { anon_vma_lock_write, anon_vma_unlock_write, mmap_assert_write_locked, vma_start_write } from './locks.ts';
import { ENOMEM } from './rmap.ts';
import { NIL, RECORD, VM_ACCESS_FLAGS, VM_SPECIAL, type Id, type Vma } from './state.ts';

// ---------------------------------------------------------------------------
// The VMA tree of an mm (the maple tree, kept as a sorted id list)

/** find_vma: the first VMA with end > page, or NIL. */
export function find_vma(c: Ctx, mmId: Id, page: number): Id {
  for (const id of mmVmas(c, mmId)) if (vmaR(c, id).end > page) return id;
  return NIL;
}

/** vma_lookup: the VMA containing page, or NIL. */
export function vma_lookup(c: Ctx, mmId: Id, page: number): Id {
  const id = find_vma(c, mmId, page);
  return id !== NIL && vmaR(c, id).start <= page ? id : NIL;
}

/** The VMA before page (the last with end <= page), or NIL: find_vma_prev's prev. */
export function vma_prev_of(c: Ctx, mmId: Id, page: number): Id {
  let prev = NIL;
  for (const id of mmVmas(c, mmId)) {
    if (vmaR(c, id).end > page) break;
    prev = id;
  }
  return prev;
}

/** The VMA that starts at or after page (vma_iter_next_rewind / vma_find), or NIL. */
export function vma_next_from(c: Ctx, mmId: Id, page: number): Id {
  for (const id of mmVmas(c, mmId)) if (vmaR(c, id).start >= page) return id;
  return NIL;
}

/** vma_iter_store / vma_link: attach a VMA to its mm's tree in start order. */
export function vma_attach(c: Ctx, vmaId: Id): void {
  const v = vma(c, vmaId);
  const start = v.start;
  const m = mm(c, v.mm);
  const list = peek(m, 'vmas');
  let i = 0;
  while (i < list.length && vmaR(c, list[i]!).start < start) i++;
  // The list with vmaId inserted at i, assigned once (cheaper than a splice on a draft).
  m.vmas = [...list.slice(0, i), vmaId, ...list.slice(i)];
  v.attached = true;
}

/** vma_mark_detached + removal from the maple tree. */
export function vma_detach(c: Ctx, vmaId: Id): void {
  const v = vma(c, vmaId);
  const m = mm(c, v.mm);
  const list = peek(m, 'vmas');
  const i = list.indexOf(vmaId);
  if (i >= 0) m.vmas = [...list.slice(0, i), ...list.slice(i + 1)];
  v.attached = false;
}

/**
 * vma_lock_init(vma, true) (mm/vma_init.c): not write-locked in any mm
 * epoch, no readers. Written out in each VMA literal below, not spread into
 * it: a spread gives the record a second hidden class in V8 (eleven fields
 * in the object, one beside it), and every reader of VMAs then sees two.
 */
const VMA_UNLOCKED_SEQ = -1;

/** vm_area_dup (mm/vma_init.c; §1.2): copies range, pgoff, flags, ops and the anon_vma pointer; empty chain; detached. NIL on ENOMEM. */
export function vm_area_dup(c: Ctx, origId: Id): Id {
  if (!allocOk(c, 'vma')) return NIL;
  const o = vmaR(c, origId);
  const id = c.s.nextId.vma++;
  // The fields of o copied one by one (spreading a draft goes through a proxy trap per field).
  insert(c, 'vmas', id, { id, mm: o.mm, start: o.start, end: o.end, pgoff: o.pgoff, flags: o.flags, hasClose: o.hasClose, anonVma: o.anonVma, chain: [], attached: false, lockSeq: VMA_UNLOCKED_SEQ, readers: 0 });
  return id;
}

/** vm_area_alloc for a new mapping. NIL on ENOMEM. */
export function vm_area_alloc(c: Ctx, mmId: Id, start: number, end: number, pgoff: number, flags: number, hasClose: boolean): Id {
  if (!allocOk(c, 'vma')) return NIL;
  const id = c.s.nextId.vma++;
  insert(c, 'vmas', id, { id, mm: mmId, start, end, pgoff, flags, hasClose, anonVma: NIL, chain: [], attached: false, lockSeq: VMA_UNLOCKED_SEQ, readers: 0 });
  return id;
}

/** vm_area_free (mm/vma_init.c): asserts the VMA is detached. */
export function vm_area_free(c: Ctx, vmaId: Id): void {
  if (vmaR(c, vmaId).attached) warn(c, 'vm_area_free: vma still attached');
  remove(c, 'vmas', vmaId);
}

/** vma_iter_prealloc: the maple-tree node preallocation; false on ENOMEM. */
export function vma_iter_prealloc(c: Ctx): boolean {
  return allocOk(c, 'prealloc');
}

// ---------------------------------------------------------------------------
// anon_vma reuse at first fault (§2.3)

/** anon_vma_compatible (vma.c; §2.3): a directly below b, same flags but access bits, linear pgoff. */
export function anon_vma_compatible(c: Ctx, aId: Id, bId: Id): boolean {
  const a = vmaR(c, aId);
  const b = vmaR(c, bId);
  return a.end === b.start && (a.flags & ~VM_ACCESS_FLAGS) === (b.flags & ~VM_ACCESS_FLAGS) && b.pgoff === a.pgoff + (b.start - a.start);
}

/** reusable_anon_vma (vma.c; §2.3): old's anon_vma if compatible and old's chain is singular. */
export function reusable_anon_vma(c: Ctx, oldId: Id, aId: Id, bId: Id): Id {
  if (!c.k.anon_vma_compatible(c, aId, bId)) return NIL;
  const old = vmaR(c, oldId);
  if (old.anonVma !== NIL && peek(old, 'chain').length === 1) return old.anonVma;
  return NIL;
}

/** find_mergeable_anon_vma (vma.c; §2.3): try the VMA starting at vm_end first, then prev. */
export function find_mergeable_anon_vma(c: Ctx, vmaId: Id): Id {
  const v = vma(c, vmaId);
  const next = vma_next_from(c, v.mm, v.end);
  if (next !== NIL && vmaR(c, next).start === v.end) {
    const found = c.k.reusable_anon_vma(c, next, vmaId, next);
    if (found !== NIL) return found;
  }
  const prev = vma_prev_of(c, v.mm, v.start);
  if (prev !== NIL) return c.k.reusable_anon_vma(c, prev, prev, vmaId);
  return NIL;
}

// ---------------------------------------------------------------------------
// The merge state (struct vma_merge_struct, mm/vma.h)

export type MergeState = 'NOMERGE' | 'SUCCESS' | 'ERROR_NOMEM';

export interface Vmg {
  mm: Id;
  prev: Id;
  middle: Id;
  next: Id;
  target: Id;
  start: number;
  end: number;
  pgoff: number;
  flags: number;
  anonVma: Id;
  copiedFrom: Id;
  state: MergeState;
  justExpand: boolean;
  giveUpOnOom: boolean;
  removeMiddle: boolean;
  removeNext: boolean;
  adjustMiddleStart: boolean;
  adjustNextStart: boolean;
}

/** VMG_STATE / VMG_VMA_STATE (vma.h): a merge proposal for [start, end) of middle (or a new range). */
export function vmg_state(c: Ctx, mmId: Id, prev: Id, middle: Id, start: number, end: number, flags: number, pgoff: number): Vmg {
  return {
    mm: mmId,
    prev,
    middle,
    next: NIL,
    target: NIL,
    start,
    end,
    pgoff,
    flags,
    anonVma: middle === NIL ? NIL : vmaR(c, middle).anonVma,
    copiedFrom: NIL,
    state: 'NOMERGE',
    justExpand: false,
    giveUpOnOom: false,
    removeMiddle: false,
    removeNext: false,
    adjustMiddleStart: false,
    adjustNextStart: false,
  };
}

// ---------------------------------------------------------------------------
// Mergeability (§3.1)

/**
 * is_mergeable_vma (vma.c; §3.1): the candidate has the proposed flags (no
 * sticky flags are modelled). The 7.x kernel also compares mempolicy,
 * vm_file, the userfaultfd ctx and anon_vma_name, which the model does not
 * have (all VMAs are anonymous, unnamed, without policy or uffd: equal). It
 * does not compare vm_ops: a ->close only keeps the VMA from being removed
 * (can_merge_remove_vma; the check left is_mergeable_vma in 6.x), so a VMA
 * with ->close merges with a plain one as the kernel's tools/testing/vma
 * test_vma_merge_with_close shows (test/model-merge.test.ts mirrors it).
 */
export function is_mergeable_vma(c: Ctx, g: Vmg, mergeNext: boolean): boolean {
  const cand = vmaR(c, mergeNext ? g.next : g.prev);
  return cand.flags === g.flags;
}

/** vma_is_fork_child (vma.c; §3.1): faulted with a multi-entry chain. */
export function vma_is_fork_child(c: Ctx, vmaId: Id): boolean {
  if (vmaId === NIL) return false;
  const v = vmaR(c, vmaId);
  return v.anonVma !== NIL && peek(v, 'chain').length !== 1;
}

/** is_mergeable_anon_vma (vma.c; §3.1): the three cases. */
export function is_mergeable_anon_vma(c: Ctx, g: Vmg, mergeNext: boolean): boolean {
  const tgt = vmaR(c, mergeNext ? g.next : g.prev);
  if (g.middle !== NIL && g.anonVma !== vmaR(c, g.middle).anonVma) warn(c, 'is_mergeable_anon_vma: vmg->anon_vma != middle->anon_vma');
  if (tgt.anonVma === NIL && g.anonVma !== NIL) {
    if (c.k.vma_is_fork_child(c, g.middle)) return false;
    if (c.k.vma_is_fork_child(c, g.copiedFrom)) return false;
    return true;
  }
  if (tgt.anonVma !== NIL && g.anonVma === NIL) return !c.k.vma_is_fork_child(c, tgt.id);
  return g.anonVma === tgt.anonVma;
}

/** can_vma_merge_before (vma.c; §3.1): the proposed range sits just below next with linear pgoff. */
export function can_vma_merge_before(c: Ctx, g: Vmg): boolean {
  const pglen = g.end - g.start;
  return c.k.is_mergeable_vma(c, g, true) && c.k.is_mergeable_anon_vma(c, g, true) && vmaR(c, g.next).pgoff === g.pgoff + pglen;
}

/** can_vma_merge_after (vma.c; §3.1): the proposed range sits just above prev with linear pgoff. */
export function can_vma_merge_after(c: Ctx, g: Vmg): boolean {
  const prev = vmaR(c, g.prev);
  return c.k.is_mergeable_vma(c, g, false) && c.k.is_mergeable_anon_vma(c, g, false) && prev.pgoff + (prev.end - prev.start) === g.pgoff;
}

/** can_vma_merge_left (vma.c; §3.1). */
export function can_vma_merge_left(c: Ctx, g: Vmg): boolean {
  return g.prev !== NIL && vmaR(c, g.prev).end === g.start && c.k.can_vma_merge_after(c, g);
}

/** can_vma_merge_right (vma.c; §3.1): if merging both sides, prev and next must be anon-compatible with each other. */
export function can_vma_merge_right(c: Ctx, g: Vmg, canMergeLeft: boolean): boolean {
  if (g.next === NIL || g.end !== vmaR(c, g.next).start || !c.k.can_vma_merge_before(c, g)) return false;
  if (!canMergeLeft) return true;
  const p = vmaR(c, g.prev).anonVma;
  const n = vmaR(c, g.next).anonVma;
  return p === NIL || n === NIL || p === n;
}

/** can_merge_remove_vma (vma.c; §3.1): a VMA with vm_ops->close is never removed by a merge. */
export function can_merge_remove_vma(c: Ctx, vmaId: Id): boolean {
  return !vmaR(c, vmaId).hasClose;
}

// ---------------------------------------------------------------------------
// Commit (§3.2, §3.3, §3.5)

/** dup_anon_vma (vma.c; §3.2): clone src's anon_vma into an unfaulted dst. Returns [err, dupedVma]. */
export function dup_anon_vma(c: Ctx, dstId: Id, srcId: Id): [number, Id] {
  const dst = vma(c, dstId);
  const src = vmaR(c, srcId);
  if (src.anonVma !== NIL && dst.anonVma === NIL) {
    mmap_assert_write_locked(c, dst.mm, 'dup_anon_vma');
    dst.anonVma = src.anonVma;
    const ret = c.k.anon_vma_clone(c, dstId, srcId, 'MERGE_UNFAULTED');
    if (ret !== 0) return [ret, NIL];
    return [0, dstId];
  }
  return [0, NIL];
}

/** struct vma_prepare (vma.c). */
export interface VmaPrepare {
  vma: Id;
  anonVma: Id;
  adjNext: Id;
  insert: Id;
  remove: Id;
  remove2: Id;
}

/** init_vma_prep / init_multi_vma_prep (vma.c; §3.3). */
export function init_multi_vma_prep(c: Ctx, vmaId: Id, g: Vmg | null): VmaPrepare {
  const vp: VmaPrepare = { vma: vmaId, anonVma: vmaR(c, vmaId).anonVma, adjNext: NIL, insert: NIL, remove: NIL, remove2: NIL };
  if (g !== null) {
    if (g.removeMiddle) {
      vp.remove = g.middle;
      if (g.removeNext) vp.remove2 = g.next;
    } else if (g.removeNext) {
      vp.remove = g.next;
    }
    vp.adjNext = g.adjustMiddleStart ? g.middle : g.adjustNextStart ? g.next : NIL;
  }
  if (vp.adjNext !== NIL) {
    const adjAnon = vmaR(c, vp.adjNext).anonVma;
    if (vp.anonVma === NIL) vp.anonVma = adjAnon;
    if (vp.anonVma !== NIL && adjAnon !== NIL && vp.anonVma !== adjAnon) warn(c, 'init_multi_vma_prep: adjusted and primary vma anon_vmas differ');
  }
  return vp;
}

/** vma_prepare (vma.c; §3.3): take the anon rwsem and pull the AVCs of vma (and adj_next) out of the trees. */
export function vma_prepare(c: Ctx, vp: VmaPrepare): void {
  if (vp.anonVma === NIL) return;
  anon_vma_lock_write(c, vp.anonVma);
  c.k.anon_vma_interval_tree_pre_update_vma(c, vp.vma);
  if (vp.adjNext !== NIL) c.k.anon_vma_interval_tree_pre_update_vma(c, vp.adjNext);
}

/** vma_complete (vma.c; §3.3): attach an inserted VMA, reinsert AVCs with the new ranges, unlock, then drop removed VMAs. */
export function vma_complete(c: Ctx, vp: VmaPrepare): void {
  if (vp.insert !== NIL) vma_attach(c, vp.insert);
  if (vp.anonVma !== NIL) {
    c.k.anon_vma_interval_tree_post_update_vma(c, vp.vma);
    if (vp.adjNext !== NIL) c.k.anon_vma_interval_tree_post_update_vma(c, vp.adjNext);
    anon_vma_unlock_write(c, vp.anonVma);
  }
  for (const removed of [vp.remove, vp.remove2]) {
    if (removed === NIL) continue;
    const r = vma(c, removed);
    // A merge never calls ->close on the VMA it removes: removing one that has it loses the hook.
    if (r.hasClose) warn(c, `${RECORD.closeRemoved} vma [${r.start},${r.end}) of P${r.mm} removed by a merge`);
    vma_detach(c, removed);
    if (r.anonVma !== NIL) c.k.unlink_anon_vmas(c, removed);
    if (vp.remove2 === NIL && vmaR(c, vp.vma).end < vmaR(c, removed).end) warn(c, 'vma_complete: removed vma extends past the survivor');
    c.k.vm_area_free(c, removed);
  }
}

/** vma_set_range (vma.h). */
export function vma_set_range(c: Ctx, vmaId: Id, start: number, end: number, pgoff: number): void {
  const v = vma(c, vmaId);
  v.start = start;
  v.end = end;
  v.pgoff = pgoff;
}

/** vmg_adjust_set_range (vma.c; §3.5 step 7): the adjusted VMA now starts at vmg->end, pgoff moved alike. */
function vmg_adjust_set_range(c: Ctx, g: Vmg): void {
  let adjust: Vma;
  let pgoff: number;
  if (g.adjustMiddleStart) {
    adjust = vma(c, g.middle);
    pgoff = adjust.pgoff + (g.end - adjust.start);
  } else if (g.adjustNextStart) {
    adjust = vma(c, g.next);
    pgoff = adjust.pgoff - (adjust.start - g.end);
  } else {
    return;
  }
  vma_set_range(c, adjust.id, g.end, adjust.end, pgoff);
}

/** commit_merge (vma.c; §3.5): preallocate (nothing changes on failure), prepare, set ranges, complete. */
export function commit_merge(c: Ctx, g: Vmg): number {
  const vmaId = g.adjustNextStart ? g.middle : g.target;
  const vp = c.k.init_multi_vma_prep(c, vmaId, g);
  if (!c.k.vma_iter_prealloc(c)) return ENOMEM;
  c.k.vma_prepare(c, vp);
  vma_set_range(c, vmaId, g.start, g.end, g.pgoff);
  vmg_adjust_set_range(c, g);
  c.k.vma_complete(c, vp);
  return 0;
}

// ---------------------------------------------------------------------------
// Merges (§3.6-§3.8)

/** vma_merge_existing_range (vma.c; §3.6): merge [start, end) of middle, whose attributes change, with prev and/or next. */
export function vma_merge_existing_range(c: Ctx, g: Vmg): Id {
  const middle = vma(c, g.middle);
  const start = g.start;
  const end = g.end;
  const leftSide = start === middle.start;
  const rightSide = end === middle.end;
  mmap_assert_write_locked(c, g.mm, 'vma_merge_existing_range');
  if (g.next !== NIL) warn(c, 'vma_merge_existing_range: next set by the caller');
  if (g.prev !== NIL && start <= vmaR(c, g.prev).start) warn(c, 'vma_merge_existing_range: start <= prev->vm_start');
  if (start >= end) warn(c, 'vma_merge_existing_range: start >= end');
  if ((g.middle !== g.prev && start !== middle.start) || end > middle.end) warn(c, 'vma_merge_existing_range: range outside middle');
  if (g.copiedFrom !== NIL) warn(c, 'vma_merge_existing_range: copied_from set');
  g.state = 'NOMERGE';
  if ((g.flags & VM_SPECIAL) !== 0 || (!leftSide && !rightSide)) return NIL;

  let mergeLeft = leftSide ? c.k.can_vma_merge_left(c, g) : false;
  let mergeRight = false;
  if (rightSide) {
    g.next = vma_next_from(c, g.mm, middle.end);
    mergeRight = c.k.can_vma_merge_right(c, g, mergeLeft);
  }
  if (!mergeLeft && !mergeRight) return NIL;
  let mergeBoth = mergeLeft && mergeRight;
  g.removeMiddle = leftSide && rightSide;
  if (g.removeMiddle && !c.k.can_merge_remove_vma(c, g.middle)) return NIL;
  g.removeNext = mergeBoth;
  if (g.removeNext && !c.k.can_merge_remove_vma(c, g.next)) {
    g.removeNext = false;
    mergeRight = false;
    mergeBoth = false;
  }
  // Every VMA the merge changes or removes is write-locked first (§3.6 step 9).
  vma_start_write(c, g.middle);
  if (mergeRight) {
    vma_start_write(c, g.next);
    g.target = g.next;
  }
  if (mergeLeft) {
    vma_start_write(c, g.prev);
    g.target = g.prev;
  }

  let err = 0;
  let anonDup = NIL;
  if (mergeBoth) {
    const prev = vma(c, g.prev);
    const next = vma(c, g.next);
    g.start = prev.start;
    g.end = next.end;
    g.pgoff = prev.pgoff;
    [err, anonDup] = c.k.dup_anon_vma(c, g.prev, next.anonVma !== NIL ? g.next : g.middle);
  } else if (mergeLeft) {
    const prev = vma(c, g.prev);
    g.start = prev.start;
    g.pgoff = prev.pgoff;
    if (!g.removeMiddle) g.adjustMiddleStart = true;
    [err, anonDup] = c.k.dup_anon_vma(c, g.prev, g.middle);
  } else {
    const next = vma(c, g.next);
    const pglen = g.end - g.start;
    if (g.start > middle.start && g.prev !== NIL && g.middle !== g.prev) warn(c, 'vma_merge_existing_range: offset into middle but prev != middle');
    if (g.removeMiddle) {
      g.end = next.end;
      g.pgoff = next.pgoff - pglen;
    } else {
      g.adjustNextStart = true;
      g.start = middle.start;
      g.end = start;
      g.pgoff = middle.pgoff;
    }
    [err, anonDup] = c.k.dup_anon_vma(c, g.next, g.middle);
  }
  if (err !== 0 || c.k.commit_merge(c, g) !== 0) {
    if (anonDup !== NIL) c.k.unlink_anon_vmas(c, anonDup);
    if (!g.giveUpOnOom) g.state = 'ERROR_NOMEM';
    return NIL;
  }
  g.state = 'SUCCESS';
  return g.target;
}

/** vma_expand (vma.c; §3.8): grow target over [start, end), removing next if it is covered; dup from next and copied_from. */
export function vma_expand(c: Ctx, g: Vmg): number {
  const target = vma(c, g.target);
  mmap_assert_write_locked(c, g.mm, 'vma_expand');
  vma_start_write(c, g.target);
  let anonDup = NIL;
  let removeNext = false;
  let ret = 0;
  if (g.next !== NIL && g.target !== g.next && g.end === vmaR(c, g.next).end) {
    removeNext = true;
    vma_start_write(c, g.next);
    if (!c.k.can_merge_remove_vma(c, g.next)) warn(c, 'vma_expand: removing a next with ->close');
    [ret, anonDup] = c.k.dup_anon_vma(c, g.target, g.next);
  }
  if (ret === 0 && g.copiedFrom !== NIL) {
    const [r, d] = c.k.dup_anon_vma(c, g.target, g.copiedFrom);
    ret = r;
    if (d !== NIL) anonDup = d;
  }
  if (ret !== 0) return ret;
  if (g.next !== NIL && !removeNext && g.next !== g.target && g.end > vmaR(c, g.next).start) warn(c, 'vma_expand: partial overwrite of next');
  if (target.start < g.start || target.end > g.end) warn(c, 'vma_expand: not an expansion');
  if (removeNext) g.removeNext = true;
  if (c.k.commit_merge(c, g) !== 0) {
    if (anonDup !== NIL) c.k.unlink_anon_vmas(c, anonDup);
    if (!g.giveUpOnOom) g.state = 'ERROR_NOMEM';
    return ENOMEM;
  }
  return 0;
}

/** vma_merge_new_range (vma.c; §3.7): a new range [start, end) merges with prev and/or next by expanding one. */
export function vma_merge_new_range(c: Ctx, g: Vmg): Id {
  mmap_assert_write_locked(c, g.mm, 'vma_merge_new_range');
  if (g.middle !== NIL || g.target !== NIL) warn(c, 'vma_merge_new_range: middle or target set');
  const end = g.end;
  g.state = 'NOMERGE';
  if ((g.flags & VM_SPECIAL) !== 0 || (g.prev === NIL && g.next === NIL)) return NIL;
  const canLeft = c.k.can_vma_merge_left(c, g);
  const canRight = !g.justExpand && c.k.can_vma_merge_right(c, g, canLeft);
  if (canRight) {
    g.end = vmaR(c, g.next).end;
    g.target = g.next;
  }
  if (canLeft) {
    const prev = vmaR(c, g.prev);
    g.start = prev.start;
    g.target = g.prev;
    g.pgoff = prev.pgoff;
    if (canRight && !c.k.can_merge_remove_vma(c, g.next)) g.end = end;
  }
  if (g.target !== NIL && c.k.vma_expand(c, g) === 0) {
    g.state = 'SUCCESS';
    return g.target;
  }
  return NIL;
}

/** vma_merge_copied_range (vma.c; §3.7): copy_vma's merge, remembering the source as copied_from. */
export function vma_merge_copied_range(c: Ctx, g: Vmg): Id {
  if (g.middle === NIL) warn(c, 'vma_merge_copied_range: no source');
  g.copiedFrom = g.middle;
  g.middle = NIL;
  return c.k.vma_merge_new_range(c, g);
}

// ---------------------------------------------------------------------------
// Split, shrink, modify, copy (§3.4, §3.9, §3.10, §4)

/** __split_vma (vma.c; §3.4): the new VMA is the lower part if newBelow, else the upper. */
export function __split_vma(c: Ctx, vmaId: Id, addr: number, newBelow: boolean): number {
  const v = vma(c, vmaId);
  if (!(v.start < addr && addr < v.end)) {
    warn(c, '__split_vma: address outside the vma');
    return -22;
  }
  const newId = c.k.vm_area_dup(c, vmaId);
  if (newId === NIL) return ENOMEM;
  const n = vma(c, newId);
  if (newBelow) n.end = addr;
  else {
    n.start = addr;
    n.pgoff += addr - v.start;
  }
  if (!c.k.vma_iter_prealloc(c)) {
    remove(c, 'vmas', newId);
    return ENOMEM;
  }
  const err = c.k.anon_vma_clone(c, newId, vmaId, 'SPLIT');
  if (err !== 0) {
    c.k.vm_area_free(c, newId);
    return err;
  }
  vma_start_write(c, vmaId);
  vma_start_write(c, newId);
  const vp = c.k.init_multi_vma_prep(c, vmaId, null);
  vp.insert = newId;
  c.k.vma_prepare(c, vp);
  if (newBelow) {
    v.pgoff += addr - n.start;
    v.start = addr;
  } else {
    v.end = addr;
  }
  c.k.vma_complete(c, vp);
  return 0;
}

/** vma_shrink (vma.c; §3.9): keep [start, end) of the VMA; only re-keys its AVCs. */
export function vma_shrink(c: Ctx, vmaId: Id, start: number, end: number, pgoff: number): number {
  const v = vmaR(c, vmaId);
  if (!(v.start === start || v.end === end)) warn(c, 'vma_shrink: neither end kept');
  if (!c.k.vma_iter_prealloc(c)) return ENOMEM;
  vma_start_write(c, vmaId);
  const vp = c.k.init_multi_vma_prep(c, vmaId, null);
  c.k.vma_prepare(c, vp);
  vma_set_range(c, vmaId, start, end, pgoff);
  c.k.vma_complete(c, vp);
  return 0;
}

/**
 * vma_modify (vma.c; §3.10): merge the range with a neighbour, or split it
 * out of middle. Returns [err, the VMA covering exactly [start, end)].
 */
export function vma_modify(c: Ctx, g: Vmg): [number, Id] {
  const merged = c.k.vma_merge_existing_range(c, g);
  if (merged !== NIL) return [0, merged];
  if (g.state === 'ERROR_NOMEM') return [ENOMEM, NIL];
  const vmaId = g.middle;
  if (vmaR(c, vmaId).start < g.start) {
    const err = c.k.__split_vma(c, vmaId, g.start, true);
    if (err !== 0) return [err, NIL];
  }
  if (vmaR(c, vmaId).end > g.end) {
    const err = c.k.__split_vma(c, vmaId, g.end, false);
    if (err !== 0) return [err, NIL];
  }
  return [0, vmaId];
}

/**
 * MREMAP_RELOCATE_ANON's in/out parameter to copy_vma (RFC, seed 002): the
 * patch's only change to copy_vma, kept here so the RFC variants call the
 * one copy_vma. Mainline callers never pass it, and then nothing changes.
 */
export interface RelocateRequest {
  on: boolean;
}

export interface CopyVmaResult {
  newVma: Id;
  /** The source after a self-merge (copy_vma's *vmap). */
  vma: Id;
  needRmapLocks: boolean;
}

/**
 * copy_vma (vma.c; §4): the destination of an mremap move: merge
 * [addr, addr + len) with its neighbours (copied_from = the source), or a
 * new VMA cloned from the source with anon_vma_clone(REMAP). need_rmap_locks
 * is set when a merged destination may precede the source in rmap order.
 */
export function copy_vma(c: Ctx, vmaId: Id, addr: number, len: number, pgoffIn: number, relocate?: RelocateRequest): CopyVmaResult | null {
  let src = vmaId;
  const v = vmaR(c, vmaId);
  const vmaStart = v.start;
  let pgoff = pgoffIn;
  let faultedInAnonVma = true;
  if (v.anonVma === NIL) {
    pgoff = addr;
    faultedInAnonVma = false;
  }
  const prev = vma_prev_of(c, v.mm, addr);
  const overlap = find_vma(c, v.mm, addr);
  if (overlap !== NIL && vmaR(c, overlap).start < addr + len) return null;
  const g = vmg_state(c, v.mm, prev, vmaId, addr, addr + len, v.flags, pgoff);
  g.next = vma_next_from(c, v.mm, addr + len);
  const merged = c.k.vma_merge_copied_range(c, g);
  // RFC: a merge makes relocation needless; otherwise the new VMA starts afresh at its address.
  if (relocate?.on) {
    if (merged !== NIL) relocate.on = false;
    else pgoff = addr;
  }
  if (merged !== NIL) {
    const m = vmaR(c, merged);
    if (vmaStart >= m.start && vmaStart < m.end) {
      if (faultedInAnonVma) warn(c, 'copy_vma: self-merge of a faulted vma');
      src = merged;
    }
    return { newVma: merged, vma: src, needRmapLocks: m.pgoff <= vmaR(c, src).pgoff };
  }
  const newId = c.k.vm_area_dup(c, vmaId);
  if (newId === NIL) return null;
  vma_set_range(c, newId, addr, addr + len, pgoff);
  if (relocate?.on) vma(c, newId).anonVma = NIL;
  else if (c.k.anon_vma_clone(c, newId, vmaId, 'REMAP') !== 0) {
    c.k.vm_area_free(c, newId);
    return null;
  }
  if (!c.k.vma_link(c, newId)) {
    c.k.unlink_anon_vmas(c, newId);
    c.k.vm_area_free(c, newId);
    return null;
  }
  // RFC: a fresh anon_vma for the relocated VMA (__anon_vma_prepare may adopt a neighbour's).
  if (relocate?.on && c.k.__anon_vma_prepare(c, newId) !== 0) {
    c.k.do_vmi_munmap(c, v.mm, addr, len, false);
    return null;
  }
  return { newVma: newId, vma: src, needRmapLocks: false };
}

/** vma_link (vma.c): preallocate and store a new VMA in its mm's tree; false on ENOMEM. */
export function vma_link(c: Ctx, vmaId: Id): boolean {
  if (!c.k.vma_iter_prealloc(c)) return false;
  // Write-locked before it is in the tree: a per-VMA-lock fault must not find it before its PTEs are there (mremap's copy_vma).
  vma_start_write(c, vmaId);
  vma_attach(c, vmaId);
  return true;
}

/** vma_merge_extend (vma.c; §3.7): mremap's in-place expansion of vma by delta pages. */
export function vma_merge_extend(c: Ctx, vmaId: Id, delta: number): Id {
  const v = vmaR(c, vmaId);
  const g = vmg_state(c, v.mm, vmaId, vmaId, v.end, v.end + delta, v.flags, v.pgoff + (v.end - v.start));
  g.next = vma_next_from(c, v.mm, v.end);
  // middle only populated the proposal; a compatible next is merged too.
  g.middle = NIL;
  return c.k.vma_merge_new_range(c, g);
}

/** The anon_vma of a VMA's root, for callers that lock it. */
export function vma_anon_root(c: Ctx, vmaId: Id): Id {
  const a = vmaR(c, vmaId).anonVma;
  return a === NIL ? NIL : avR(c, a, 'vma_anon_root').root;
}

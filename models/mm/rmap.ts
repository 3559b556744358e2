// mm/rmap.c and the anon_vma helpers of mm/internal.h: anon_vma lifetime,
// anon_vma_chain links, clone/fork/unlink, folio rmap accounting and the
// anonymous rmap walk. Digest §1.3-§1.5 and §2.1-§2.13.
import { user_page_swapped } from './user.ts';
import { allocOk, av, insert, remove, avR, avc, avcR, folio, mm, mmR, peek, pte_clear, pteR, vma, vmaR, warn, type Ctx } from './ctx.ts';
import {
  anon_vma_assert_tree_locked,
  anon_vma_lock_write,
  anon_vma_trylock_read,
  anon_vma_unlock_read,
  anon_vma_unlock_write,
  mmap_assert_locked,
  mmap_assert_write_locked,
  page_table_lock,
  page_table_unlock,
  pte_lock,
  pte_unlock,
} from './locks.ts';
import { lock_point, mmMayHaveOtherThreads } from './sched.ts';
import { NIL, freeLock, linearPageIndex, vmaPages, type Id, type State, type Vma } from './state.ts';

export const ENOMEM = -12;
export const EBUSY = -16;
export const EFAULT = -14;

/** enum vma_operation (mm/internal.h; §2.4). */
export type VmaOperation = 'SPLIT' | 'MERGE_UNFAULTED' | 'REMAP' | 'FORK';

// ---------------------------------------------------------------------------
// anon_vma lifetime (§1.3, §2.1)

/** anon_vma_alloc (rmap.c; §2.1): refcount 1, self parent and root. NIL on ENOMEM. */
export function anon_vma_alloc(c: Ctx): Id {
  if (!allocOk(c, 'anon_vma')) return NIL;
  const id = c.s.nextId.anonVma++;
  insert(c, 'anonVmas', id, {
    id,
    root: id,
    parent: id,
    refcount: 1,
    numChildren: 0,
    numActiveVmas: 0,
    tree: [],
    rwsem: freeLock(),
    freed: false,
    ext: undefined,
  });
  return id;
}

/** anon_vma_free (rmap.c; §1.3): BUG unless the refcount is 0; synchronizes on the root's rwsem. */
export function anon_vma_free(c: Ctx, id: Id): void {
  const a = av(c, id, 'anon_vma_free');
  if (a.refcount !== 0) warn(c, 'anon_vma_free: refcount != 0');
  // The kernel peeks at root->rwsem to synchronize with a trylock winner in
  // folio_lock_anon_vma_read: the root must still be alive here (B8e).
  avR(c, a.root, 'anon_vma_free(root->rwsem)');
  a.freed = true;
}

/** get_anon_vma (mm/internal.h; §2.1). */
export function get_anon_vma(c: Ctx, id: Id): void {
  av(c, id, 'get_anon_vma').refcount++;
}

/** put_anon_vma (mm/internal.h; §1.3): frees at refcount 0. */
export function put_anon_vma(c: Ctx, id: Id): void {
  const a = av(c, id, 'put_anon_vma');
  a.refcount--;
  if (a.refcount < 0) warn(c, 'put_anon_vma: refcount underflow');
  if (a.refcount === 0) c.k.__put_anon_vma(c, id);
}

/** __put_anon_vma (rmap.c; §1.3): free the anon_vma first, then drop its pin on the root. */
export function __put_anon_vma(c: Ctx, id: Id): void {
  const root = avR(c, id, '__put_anon_vma').root;
  c.k.anon_vma_free(c, id);
  if (root !== id) {
    const r = av(c, root, '__put_anon_vma(root)');
    r.refcount--;
    if (r.refcount === 0) c.k.anon_vma_free(c, root);
  }
}

// ---------------------------------------------------------------------------
// anon_vma_chain and the interval tree (§1.4)

/** anon_vma_chain_alloc: a new, unlinked AVC, or NIL on ENOMEM. */
export function anon_vma_chain_alloc(c: Ctx): Id {
  if (!allocOk(c, 'avc')) return NIL;
  const id = c.s.nextId.avc++;
  insert(c, 'avcs', id, { id, vma: NIL, anonVma: NIL, inTree: false, cachedStart: 0, cachedLast: 0 });
  return id;
}

export function anon_vma_chain_free(c: Ctx, id: Id): void {
  remove(c, 'avcs', id);
}

/** anon_vma_chain_assign (rmap.c; §1.4): fill the AVC and list_add it at the head of the VMA's chain. */
export function anon_vma_chain_assign(c: Ctx, vmaId: Id, avcId: Id, avId: Id): void {
  const a = avc(c, avcId);
  a.vma = vmaId;
  a.anonVma = avId;
  const v = vma(c, vmaId);
  v.chain = [avcId, ...peek(v, 'chain')];
}

/**
 * anon_vma_interval_tree_insert (mm/interval_tree.c; §1.4): keyed by the VMA's
 * live [vm_pgoff, vm_pgoff + pages - 1]; left iff start < node start, so an
 * equal start goes after every equal one (in-order = insertion order).
 */
export function anon_vma_interval_tree_insert(c: Ctx, avcId: Id, avId: Id): void {
  const a = avc(c, avcId);
  const v = vmaR(c, a.vma);
  const anon = av(c, avId, 'anon_vma_interval_tree_insert');
  anon_vma_assert_tree_locked(c, avId, 'anon_vma_interval_tree_insert');
  const start = v.pgoff;
  const tree = peek(anon, 'tree');
  let i = 0;
  while (i < tree.length && avcR(c, tree[i]!).cachedStart <= start) i++;
  anon.tree = [...tree.slice(0, i), avcId, ...tree.slice(i)];
  a.inTree = true;
  a.cachedStart = start;
  a.cachedLast = start + vmaPages(v) - 1;
}

/** anon_vma_interval_tree_remove (mm/interval_tree.c). */
export function anon_vma_interval_tree_remove(c: Ctx, avcId: Id, avId: Id): void {
  const anon = av(c, avId, 'anon_vma_interval_tree_remove');
  anon_vma_assert_tree_locked(c, avId, 'anon_vma_interval_tree_remove');
  const tree = peek(anon, 'tree');
  const i = tree.indexOf(avcId);
  if (i < 0) warn(c, 'anon_vma_interval_tree_remove: avc not in tree');
  else anon.tree = [...tree.slice(0, i), ...tree.slice(i + 1)];
  avc(c, avcId).inTree = false;
}

/** anon_vma_interval_tree_pre_update_vma (mm/vma.c; §3.3): take the VMA's AVCs out before its range changes. */
export function anon_vma_interval_tree_pre_update_vma(c: Ctx, vmaId: Id): void {
  for (const id of peek(vmaR(c, vmaId), 'chain')) c.k.anon_vma_interval_tree_remove(c, id, avcR(c, id).anonVma);
}

/** anon_vma_interval_tree_post_update_vma (mm/vma.c; §3.3): reinsert with the new range. */
export function anon_vma_interval_tree_post_update_vma(c: Ctx, vmaId: Id): void {
  for (const id of peek(vmaR(c, vmaId), 'chain')) c.k.anon_vma_interval_tree_insert(c, id, avcR(c, id).anonVma);
}

// ---------------------------------------------------------------------------
// anon_vma_prepare (§2.2)

/** anon_vma_prepare (mm/internal.h; §2.2): lockless fast path, then __anon_vma_prepare. */
export function anon_vma_prepare(c: Ctx, vmaId: Id): number {
  if (vmaR(c, vmaId).anonVma !== NIL) return 0;
  return c.k.__anon_vma_prepare(c, vmaId);
}

/** __anon_vma_prepare (rmap.c; §2.2): attach a neighbour's anon_vma (find_mergeable_anon_vma) or a new root. */
export function __anon_vma_prepare(c: Ctx, vmaId: Id): number {
  const v = vma(c, vmaId);
  mmap_assert_locked(c, v.mm, '__anon_vma_prepare');
  let avcId = c.k.anon_vma_chain_alloc(c);
  if (avcId === NIL) return ENOMEM;
  let allocated = NIL;
  let anon = c.k.find_mergeable_anon_vma(c, vmaId);
  if (anon === NIL) {
    anon = c.k.anon_vma_alloc(c);
    if (anon === NIL) {
      c.k.anon_vma_chain_free(c, avcId);
      return ENOMEM;
    }
    // The self-parent link of a new root (§1.3).
    av(c, anon, '__anon_vma_prepare').numChildren++;
    allocated = anon;
  }
  // A fault's prepare, with another thread of the mm that may be preparing
  // the same VMA (it holds the mmap lock for read too, or a walker the
  // anon_vma lock): the step ends before the lock, and both may allocate.
  if (c.t?.op?.kind === 'fault' && mmMayHaveOtherThreads(c))
    lock_point(c, '__anon_vma_prepare_locked', { vmas: [vmaId], anonVmas: allocated === NIL ? [anon] : [anon, allocated], nums: [avcId] });
  return c.k.__anon_vma_prepare_locked(c, vmaId, anon, allocated, avcId);
}

/**
 * __anon_vma_prepare (rmap.c; §2.2 steps 4-7) from the anon_vma lock on:
 * unless another thread set vma->anon_vma meanwhile, attach anon with the
 * AVC; then free what is left over (the anon_vma allocated here and lost to
 * the racing thread, the unused AVC).
 */
export function __anon_vma_prepare_locked(c: Ctx, vmaId: Id, anon: Id, allocatedIn: Id, avcIn: Id): number {
  const v = vmaR(c, vmaId);
  let allocated = allocatedIn;
  let avcId = avcIn;
  anon_vma_lock_write(c, anon);
  page_table_lock(c, v.mm);
  if (vmaR(c, vmaId).anonVma === NIL) {
    vma(c, vmaId).anonVma = anon;
    c.k.anon_vma_chain_assign(c, vmaId, avcId, anon);
    c.k.anon_vma_interval_tree_insert(c, avcId, anon);
    av(c, anon, '__anon_vma_prepare').numActiveVmas++;
    allocated = NIL;
    avcId = NIL;
  }
  page_table_unlock(c, v.mm);
  anon_vma_unlock_write(c, anon);
  if (allocated !== NIL) c.k.put_anon_vma(c, allocated);
  if (avcId !== NIL) c.k.anon_vma_chain_free(c, avcId);
  return 0;
}

// ---------------------------------------------------------------------------
// anon_vma_clone, anon_vma_fork, unlink_anon_vmas (§2.4-§2.6)

const chainIsEmpty = (v: Readonly<Vma>): boolean => peek(v, 'chain').length === 0;

/** check_anon_vma_clone (rmap.c; §7.1): the asserts at the top of anon_vma_clone. */
export function check_anon_vma_clone(c: Ctx, dstId: Id, srcId: Id, op: VmaOperation): void {
  const dst = vmaR(c, dstId);
  const src = vmaR(c, srcId);
  mmap_assert_write_locked(c, src.mm, 'check_anon_vma_clone');
  if (op !== 'FORK' && dst.mm !== src.mm) warn(c, 'check_anon_vma_clone: dst and src in different mms');
  if (src.anonVma === NIL && !chainIsEmpty(src)) warn(c, 'check_anon_vma_clone: unfaulted src has a chain');
  if (src.anonVma === NIL && dst.anonVma !== NIL) warn(c, 'check_anon_vma_clone: unfaulted src, faulted dst');
  if (!chainIsEmpty(dst)) warn(c, 'check_anon_vma_clone: dst chain not empty');
  if (dst.anonVma !== NIL && dst.anonVma !== src.anonVma) warn(c, 'check_anon_vma_clone: dst->anon_vma != src->anon_vma');
  if (op !== 'FORK' && src.anonVma !== NIL && dst.anonVma === NIL) warn(c, 'check_anon_vma_clone: dst->anon_vma unset');
  if (op === 'MERGE_UNFAULTED' && peek(src, 'chain').length !== 1) warn(c, 'check_anon_vma_clone: merge from a non-singular chain');
  if (op !== 'MERGE_UNFAULTED' && dst.attached) warn(c, 'check_anon_vma_clone: dst attached');
}

/**
 * anon_vma_clone (rmap.c; §2.4), 7.x: allocate every AVC first (prepending,
 * so dst's list is the reverse of src's), then under the root lock insert
 * them walking dst tail -> head (src's order), trying fork reuse on each.
 */
export function anon_vma_clone(c: Ctx, dstId: Id, srcId: Id, op: VmaOperation): number {
  c.k.check_anon_vma_clone(c, dstId, srcId, op);
  const src = vmaR(c, srcId);
  if (src.anonVma === NIL) return 0;
  for (const pavcId of [...peek(src, 'chain')]) {
    const id = c.k.anon_vma_chain_alloc(c);
    if (id === NIL) {
      c.k.cleanup_partial_anon_vmas(c, dstId);
      return ENOMEM;
    }
    c.k.anon_vma_chain_assign(c, dstId, id, avcR(c, pavcId).anonVma);
  }
  const srcAnon = src.anonVma;
  anon_vma_lock_write(c, srcAnon);
  const dstChain = vma(c, dstId).chain;
  for (let i = dstChain.length - 1; i >= 0; i--) {
    const id = dstChain[i]!;
    const target = avcR(c, id).anonVma;
    c.k.anon_vma_interval_tree_insert(c, id, target);
    if (op === 'FORK') c.k.maybe_reuse_anon_vma(c, dstId, target);
  }
  if (op !== 'FORK') av(c, vmaR(c, dstId).anonVma, 'anon_vma_clone').numActiveVmas++;
  anon_vma_unlock_write(c, srcAnon);
  return 0;
}

/** maybe_reuse_anon_vma (rmap.c; §2.4): fork adopts an anon_vma with no VMAs and at most one child. */
export function maybe_reuse_anon_vma(c: Ctx, dstId: Id, avId: Id): void {
  const dst = vma(c, dstId);
  if (dst.anonVma !== NIL) return;
  const a = av(c, avId, 'maybe_reuse_anon_vma');
  if (a.numActiveVmas > 0) return;
  if (a.numChildren > 1) return;
  dst.anonVma = avId;
  a.numActiveVmas++;
}

/** cleanup_partial_anon_vmas (rmap.c; §2.4 step 7): free the unlinked AVCs and reset dst->anon_vma. */
export function cleanup_partial_anon_vmas(c: Ctx, vmaId: Id): void {
  const v = vma(c, vmaId);
  mmap_assert_locked(c, v.mm, 'cleanup_partial_anon_vmas');
  for (const id of v.chain) c.k.anon_vma_chain_free(c, id);
  v.chain = [];
  v.anonVma = NIL;
}

/** anon_vma_fork (rmap.c; §2.5): clone the parent's chain, then add the child's own anon_vma unless one was reused. */
export function anon_vma_fork(c: Ctx, vmaId: Id, pvmaId: Id): number {
  const pvma = vmaR(c, pvmaId);
  if (pvma.anonVma === NIL) return 0;
  vma(c, vmaId).anonVma = NIL;
  const anon = c.k.anon_vma_alloc(c);
  if (anon === NIL) return ENOMEM;
  const avcId = c.k.anon_vma_chain_alloc(c);
  if (avcId === NIL) {
    c.k.put_anon_vma(c, anon);
    return ENOMEM;
  }
  const rc = c.k.anon_vma_clone(c, vmaId, pvmaId, 'FORK');
  if (rc !== 0 || vmaR(c, vmaId).anonVma !== NIL) {
    c.k.put_anon_vma(c, anon);
    c.k.anon_vma_chain_free(c, avcId);
    return rc;
  }
  // Not yet visible to anyone: set up without the lock.
  const a = av(c, anon, 'anon_vma_fork');
  const pAnon = vmaR(c, pvmaId).anonVma;
  a.numActiveVmas = 1;
  a.root = avR(c, pAnon, 'anon_vma_fork(parent)').root;
  a.parent = pAnon;
  c.k.get_anon_vma(c, a.root);
  vma(c, vmaId).anonVma = anon;
  c.k.anon_vma_chain_assign(c, vmaId, avcId, anon);
  anon_vma_lock_write(c, anon);
  c.k.anon_vma_interval_tree_insert(c, avcId, anon);
  av(c, a.parent, 'anon_vma_fork(parent)').numChildren++;
  anon_vma_unlock_write(c, anon);
  return 0;
}

/**
 * unlink_anon_vmas (rmap.c; §2.6): remove every AVC from its tree under the
 * root lock; those whose tree emptied stay listed and are put in a second,
 * unlocked pass.
 */
export function unlink_anon_vmas(c: Ctx, vmaId: Id): void {
  const v = vma(c, vmaId);
  mmap_assert_locked(c, v.mm, 'unlink_anon_vmas');
  if (v.anonVma === NIL) {
    if (!chainIsEmpty(v)) warn(c, 'unlink_anon_vmas: unfaulted vma has a chain');
    return;
  }
  const own = v.anonVma;
  anon_vma_lock_write(c, own);
  const kept: Id[] = [];
  for (const id of peek(v, 'chain')) {
    const target = avcR(c, id).anonVma;
    c.k.anon_vma_interval_tree_remove(c, id, target);
    const a = avR(c, target, 'unlink_anon_vmas');
    if (a.tree.length === 0) {
      av(c, a.parent, 'unlink_anon_vmas(parent)').numChildren--;
      kept.push(id);
    } else {
      c.k.anon_vma_chain_free(c, id);
    }
  }
  v.chain = kept;
  av(c, own, 'unlink_anon_vmas').numActiveVmas--;
  v.anonVma = NIL;
  anon_vma_unlock_write(c, own);
  for (const id of kept) {
    const target = avcR(c, id).anonVma;
    const a = avR(c, target, 'unlink_anon_vmas');
    if (a.numChildren !== 0 || a.numActiveVmas !== 0) warn(c, 'unlink_anon_vmas: emptied anon_vma still has children or active vmas');
    c.k.put_anon_vma(c, target);
    c.k.anon_vma_chain_free(c, id);
  }
  vma(c, vmaId).chain = [];
}

// ---------------------------------------------------------------------------
// Folio rmap (§2.7, §2.9-§2.11, §2.13)

/** __folio_set_anon (rmap.c; §2.9): mapping = own anon_vma if exclusive, else the root; index = linear index. */
export function __folio_set_anon(c: Ctx, folioId: Id, vmaId: Id, page: number, exclusive: boolean): void {
  const v = vmaR(c, vmaId);
  if (v.anonVma === NIL) {
    warn(c, '__folio_set_anon: vma->anon_vma is NULL');
    return;
  }
  const f = folio(c, folioId);
  f.anonVma = exclusive ? v.anonVma : avR(c, v.anonVma, '__folio_set_anon').root;
  f.index = linearPageIndex(v, page);
}

/** folio_add_new_anon_rmap (rmap.c; §2.9): a new folio mapped at page (its first page) of vma. */
export function folio_add_new_anon_rmap(c: Ctx, folioId: Id, vmaId: Id, page: number, exclusive: boolean): void {
  const f = folio(c, folioId);
  if (!exclusive && f.locked === NIL) warn(c, 'folio_add_new_anon_rmap: non-exclusive folio not locked');
  c.k.__folio_set_anon(c, folioId, vmaId, page, exclusive);
  f.mapcount = f.nrPages;
  f.exclusive = exclusive ? (1 << f.nrPages) - 1 : 0;
  const v = vmaR(c, vmaId);
  if (page < v.start || page + f.nrPages > v.end) warn(c, 'folio_add_new_anon_rmap: folio range exceeds vma');
}

/** folio_move_anon_rmap (rmap.c; §2.11): move an exclusively owned folio to the VMA's own anon_vma. */
export function folio_move_anon_rmap(c: Ctx, folioId: Id, vmaId: Id): void {
  const f = folio(c, folioId);
  const v = vmaR(c, vmaId);
  if (f.locked === NIL) warn(c, 'folio_move_anon_rmap: folio not locked');
  if (v.anonVma === NIL) {
    warn(c, 'folio_move_anon_rmap: vma->anon_vma is NULL');
    return;
  }
  f.anonVma = v.anonVma;
}

/** folio_needs_cow_for_dma (mm.h; §1.5): MMF_HAS_PINNED on the mm and the folio maybe pinned. */
export function folio_needs_cow_for_dma(c: Ctx, vmaId: Id, folioId: Id): boolean {
  return mmR(c, vmaR(c, vmaId).mm).hasPinned && folio(c, folioId).pinned;
}

/**
 * folio_try_dup_anon_rmap_pte (rmap.h; §2.7): fork shares the page (clearing
 * PageAnonExclusive) unless it is exclusive and may be DMA-pinned: -EBUSY,
 * and the child gets a copy.
 */
export function folio_try_dup_anon_rmap_pte(c: Ctx, folioId: Id, sub: number, srcVmaId: Id): number {
  const f = folio(c, folioId);
  if (c.k.folio_needs_cow_for_dma(c, srcVmaId, folioId) && (f.exclusive & (1 << sub)) !== 0) return EBUSY;
  f.exclusive &= ~(1 << sub);
  f.mapcount++;
  return 0;
}

/** folio_add_anon_rmap_pte (rmap.c; §2.10), with the __page_check_anon_rmap BUGs. */
export function folio_add_anon_rmap_pte(c: Ctx, folioId: Id, sub: number, vmaId: Id, page: number): void {
  const f = folio(c, folioId);
  const v = vmaR(c, vmaId);
  f.mapcount++;
  if (v.anonVma === NIL || avR(c, f.anonVma, '__page_check_anon_rmap').root !== avR(c, v.anonVma, '__page_check_anon_rmap').root)
    warn(c, '__page_check_anon_rmap: anon_vma roots differ');
  if (f.index + sub !== linearPageIndex(v, page)) warn(c, '__page_check_anon_rmap: page_pgoff != linear_page_index');
}

/** folio_remove_rmap_pte (rmap.c; §2.13): mapcount - 1; mapping, index and exclusivity untouched. */
export function folio_remove_rmap_pte(c: Ctx, folioId: Id): void {
  const f = folio(c, folioId);
  f.mapcount--;
  if (f.mapcount < 0) warn(c, 'folio_remove_rmap_pte: mapcount underflow');
}

// ---------------------------------------------------------------------------
// The anonymous rmap walk (§2.12). Pure functions of a state: walkers and
// properties read exactly what the kernel reads.

/** vma_address (mm/internal.h; §2.12): the address of pgoff in vma, or EFAULT. */
export function vma_address(v: Vma, pgoff: number, nrPages: number): number {
  if (pgoff >= v.pgoff) {
    const address = v.start + (pgoff - v.pgoff);
    return address >= v.start && address < v.end ? address : EFAULT;
  }
  if (pgoff + nrPages - 1 >= v.pgoff) return v.start;
  return EFAULT;
}

/** folio_lock_anon_vma_read's answer when rwc->try_lock finds the lock contended. */
export const ANON_LOCK_CONTENDED = -1000;

/**
 * folio_lock_anon_vma_read (rmap.c; §2.12), up to the sleep: returns the
 * anon_vma read-locked (the trylock fast path), NIL when there is nothing to
 * walk, ANON_LOCK_CONTENDED with try_lock, or -2 - id for the slow path: the
 * anon_vma whose refcount it pinned and on whose lock the caller now sleeps
 * (a step of its own at lock granularity, walkers.ts).
 */
export function folio_lock_anon_vma_read(c: Ctx, folioId: Id, tryLock: boolean): number {
  const f = folio(c, folioId);
  if (f.anonVma === NIL || f.mapcount <= 0) return NIL;
  const anon = f.anonVma;
  avR(c, avR(c, anon, 'folio_lock_anon_vma_read').root, 'folio_lock_anon_vma_read(root)');
  if (anon_vma_trylock_read(c, anon)) {
    if (folio(c, folioId).mapcount > 0) return anon;
    anon_vma_unlock_read(c, anon);
    return NIL;
  }
  if (tryLock) return ANON_LOCK_CONTENDED;
  // Slow path: atomic_inc_not_zero(&anon_vma->refcount), recheck folio_mapped.
  const a = avR(c, anon, 'folio_lock_anon_vma_read(refcount)');
  if (a.refcount === 0) return NIL;
  c.k.get_anon_vma(c, anon);
  if (folio(c, folioId).mapcount <= 0) {
    c.k.put_anon_vma(c, anon);
    return NIL;
  }
  return -2 - anon;
}

/**
 * folio_get_anon_vma (rmap.c; §1.3, §2.12): a reference on folio->mapping's
 * anon_vma for a caller that will sleep before it walks (migration, KSM),
 * or NIL. Nothing to take unless the mapping is an anon_vma (a plain anon
 * folio: the model has no KSM or movable_ops folios) and the folio is
 * mapped; then atomic_inc_not_zero on the refcount (NIL when it is already
 * 0: the anon_vma is on its way out), and folio_mapped again (unmapped in
 * between: the anon_vma may be freed and reused, so put the reference back
 * and answer NIL). The root is not touched: a non-root anon_vma holds its
 * own reference on the root until __put_anon_vma, so the reference taken
 * here keeps both alive. The caller holds the folio lock, so the mapping
 * cannot move to an anon_vma of another root meanwhile.
 */
export function folio_get_anon_vma(c: Ctx, folioId: Id): Id {
  const f = folio(c, folioId);
  if (f.anonVma === NIL || f.mapcount <= 0) return NIL;
  const anon = f.anonVma;
  if (avR(c, anon, 'folio_get_anon_vma').refcount === 0) return NIL;
  c.k.get_anon_vma(c, anon);
  if (folio(c, folioId).mapcount <= 0) {
    c.k.put_anon_vma(c, anon);
    return NIL;
  }
  return anon;
}

/**
 * The PTEs of folioId in vmaId at vma_address, under the PTL
 * (page_vma_mapped_walk, §2.12): the pages found, by address. A walk that
 * gets -EFAULT from vma_address hits the kernel's VM_BUG_ON.
 */
export function page_vma_mapped_walk(c: Ctx, folioId: Id, vmaId: Id): number[] {
  const f = folio(c, folioId);
  const v = vmaR(c, vmaId);
  if (vma_address(v, f.index, f.nrPages) === EFAULT) {
    warn(c, 'rmap_walk_anon: vma_address -EFAULT');
    return [];
  }
  const found: number[] = [];
  for (let sub = 0; sub < f.nrPages; sub++) {
    const at = v.start + (f.index + sub - v.pgoff);
    if (at < v.start || at >= v.end) continue;
    const pte = pteR(c, v.mm, at);
    if (pte !== undefined && pte.folio === folioId && pte.sub === sub) found.push(at);
  }
  return found;
}

/**
 * try_to_unmap_one (rmap.c; §2.12): under the VMA's PTL, clear each PTE of
 * the folio in the VMA and drop its mapcount. The swap entry the kernel
 * leaves is not modelled: the page reads as not present. Returns the PTEs
 * cleared.
 */
export function try_to_unmap_one(c: Ctx, folioId: Id, vmaId: Id): number {
  const mmId = vmaR(c, vmaId).mm;
  pte_lock(c, mmId);
  const found = page_vma_mapped_walk(c, folioId, vmaId);
  for (const at of found) {
    pte_clear(c, mmId, at);
    c.k.folio_remove_rmap_pte(c, folioId);
    user_page_swapped(c, mmId, at);
  }
  pte_unlock(c, mmId);
  return found.length;
}

/** folio_referenced_one (rmap.c; §2.12): under the PTL, the PTEs of the folio in the VMA (young bits are not modelled). */
export function folio_referenced_one(c: Ctx, folioId: Id, vmaId: Id): number {
  const mmId = vmaR(c, vmaId).mm;
  pte_lock(c, mmId);
  const found = page_vma_mapped_walk(c, folioId, vmaId);
  pte_unlock(c, mmId);
  return found.length;
}

export interface RmapVisit {
  avc: Id;
  vma: Id;
  address: number;
}

/**
 * rmap_walk_anon (rmap.c; §2.12): the (vma, address) pairs visited, in
 * interval-tree order, walking only the tree of folio->mapping over
 * [index, index + nr - 1] with keys read live from the VMAs.
 */
export function rmap_walk_anon(s: State, folioId: Id): RmapVisit[] {
  const f = s.folios[folioId];
  if (f === undefined || f.anonVma === NIL) return [];
  const anon = s.anonVmas[f.anonVma];
  if (anon === undefined) return [];
  const first = f.index;
  const last = f.index + f.nrPages - 1;
  const out: RmapVisit[] = [];
  for (const id of anon.tree) {
    const a = s.avcs[id];
    if (a === undefined) continue;
    const v = s.vmas[a.vma];
    if (v === undefined) continue;
    const vStart = v.pgoff;
    const vLast = v.pgoff + vmaPages(v) - 1;
    if (vLast < first || vStart > last) continue;
    out.push({ avc: id, vma: v.id, address: vma_address(v, first, f.nrPages) });
  }
  return out;
}

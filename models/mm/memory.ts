// mm/memory.c: anonymous faults, copy-on-write, fork's page copy, zap, and
// the long-term GUP pin. Digest §2.7, §2.8, §2.11, §5.
import { allocOk, folio, insert, remove, mm, mmR, peek, pte_clear, pteR, set_pte_at, vma, vmaR, warn, type Ctx } from './ctx.ts';
import { folio_trylock, folio_unlock, mmap_read_lock, mmap_read_trylock, mmap_read_unlock, pte_lock, pte_unlock, vma_end_read, vma_start_read, vma_start_write } from './locks.ts';
import { lock_point, mmMayHaveOtherThreads } from './sched.ts';
import { EBUSY, ENOMEM } from './rmap.ts';
import { NIL, VM_READ, VM_WRITE, ZERO_PAGE, walkerHolds, zeroPages, type Id } from './state.ts';
import { vma_lookup } from './vma.ts';
import { copy_user_page } from './user.ts';

export const VM_FAULT_OOM = -1;
/** Pages of the large folio a fault may allocate with --large-folios (an order-1 mTHP). */
export const LARGE_FOLIO_PAGES = 2;
export const VM_FAULT_SIGSEGV = -2;
/** The fault dropped its VMA lock and must be retried under the mmap lock. */
export const VM_FAULT_RETRY = -3;

/** alloc_anon_folio: a new, unmapped small folio; NIL on ENOMEM. */
export function folio_alloc(c: Ctx, nrPages = 1): Id {
  if (!allocOk(c, 'folio')) return NIL;
  const id = c.s.nextId.folio++;
  insert(c, 'folios', id, { id, anonVma: NIL, index: 0, nrPages, mapcount: 0, exclusive: 0, pinned: false, locked: NIL, data: zeroPages(nrPages) });
  return id;
}

/** The last folio reference is dropped (after the TLB flush in zap, §5): the folio is freed. */
export function folio_put_last(c: Ctx, folioId: Id): void {
  if (folio(c, folioId).mapcount === 0 && !walkerHolds(peek(c.s, 'threads'), peek(c.s, 'nextId').walker, folioId)) remove(c, 'folios', folioId);
}

/**
 * vmf_anon_prepare (mm/internal.h) and __vmf_anon_prepare (memory.c; §2.8
 * step 3): a fault holding only the VMA lock may not look at the
 * neighbours __anon_vma_prepare reads, so it trylocks the mmap lock for
 * read; when that fails it drops the VMA lock and returns VM_FAULT_RETRY.
 */
export function vmf_anon_prepare(c: Ctx, vmaId: Id): number {
  if (vmaR(c, vmaId).anonVma !== NIL) return 0;
  const mmId = vmaR(c, vmaId).mm;
  if (faultUnderVmaLock(c) && !mmap_read_trylock(c, mmId)) {
    vma_end_read(c, vmaId);
    return VM_FAULT_RETRY;
  }
  return vmf_anon_prepare_done(c, mmId, c.k.__anon_vma_prepare(c, vmaId));
}

/**
 * __vmf_anon_prepare (memory.c; §2.8 step 3) after __anon_vma_prepare returned err: the mmap read
 * lock it trylocked is dropped (under the VMA lock); VM_FAULT_OOM on error.
 * (Also the end of a prepare resumed after its lock point, threads.ts.)
 */
export function vmf_anon_prepare_done(c: Ctx, mmId: Id, err: number): number {
  if (faultUnderVmaLock(c)) mmap_read_unlock(c, mmId);
  return err !== 0 ? VM_FAULT_OOM : 0;
}

/**
 * do_anonymous_page (memory.c; §2.8): read faults map the zero page; write
 * faults prepare the anon_vma and allocate a folio, then (a step of its own
 * at lock granularity: another thread of the mm may hold the PTE lock) map it.
 */
export function do_anonymous_page(c: Ctx, vmaId: Id, page: number, write: boolean, large = false): number {
  const v = vma(c, vmaId);
  if (!write) {
    pte_lock(c, v.mm);
    if (pteR(c, v.mm, page) === undefined) set_pte_at(c, v.mm, page, { folio: ZERO_PAGE, sub: 0, writable: false });
    pte_unlock(c, v.mm);
    return 0;
  }
  const prepared = vmf_anon_prepare(c, vmaId);
  if (prepared !== 0) return prepared;
  // alloc_anon_folio: an order-1 (2-page) mTHP when asked for and its aligned
  // range lies in the VMA with every PTE none; otherwise order 0.
  const base = page - (page % LARGE_FOLIO_PAGES);
  const nr =
    large && base >= v.start && base + LARGE_FOLIO_PAGES <= v.end && [0, 1].every((i) => pteR(c, v.mm, base + i) === undefined) ? LARGE_FOLIO_PAGES : 1;
  const addr = nr === 1 ? page : base;
  const f = c.k.folio_alloc(c, nr);
  if (f === NIL) return VM_FAULT_OOM;
  // Another thread of this mm may hold the PTE lock across its steps only if the mm can have one (--threads).
  if (mmMayHaveOtherThreads(c)) lock_point(c, 'do_anonymous_page_map', { vmas: [vmaId], folios: [f], nums: [addr, nr] });
  return c.k.do_anonymous_page_map(c, vmaId, f, addr, nr);
}

/**
 * do_anonymous_page (memory.c; §2.8 steps 5-6) under the PTE lock: unless
 * another thread mapped the range meanwhile (then the new folio is freed),
 * folio_add_new_anon_rmap and set_ptes.
 */
export function do_anonymous_page_map(c: Ctx, vmaId: Id, f: Id, addr: number, nr: number): number {
  const v = vmaR(c, vmaId);
  pte_lock(c, v.mm);
  for (let i = 0; i < nr; i++)
    if (mm(c, v.mm).ptes[addr + i] !== undefined) {
      pte_unlock(c, v.mm);
      remove(c, 'folios', f);
      return 0;
    }
  c.k.folio_add_new_anon_rmap(c, f, vmaId, addr, true);
  // map_anon_folio_pte_nopf: set_ptes over the folio's pages.
  for (let i = 0; i < nr; i++) set_pte_at(c, v.mm, addr + i, { folio: f, sub: i, writable: (v.flags & VM_WRITE) !== 0 });
  pte_unlock(c, v.mm);
  return 0;
}

/** Number of PTEs of mm mapping the folio. */
function mappingsInMm(c: Ctx, mmId: Id, folioId: Id): number {
  let n = 0;
  const ptes = mmR(c, mmId).ptes;
  for (let page = 0; page < ptes.length; page++) if (ptes[page]?.folio === folioId) n++;
  return n;
}

/**
 * wp_can_reuse_anon_folio (memory.c; §2.11). Small folio: reusable when the
 * only reference is this mapping (refcount == 1: mapcount 1, not pinned),
 * under a folio trylock, then folio_move_anon_rmap. Large folio: reusable
 * when all its mappings are in this mm and it is not pinned; no move.
 */
export function wp_can_reuse_anon_folio(c: Ctx, folioId: Id, vmaId: Id): boolean {
  const f = folio(c, folioId);
  if (f.pinned) return false;
  if (f.nrPages > 1) return f.mapcount === mappingsInMm(c, vmaR(c, vmaId).mm, folioId);
  if (f.mapcount !== 1) return false;
  if (!folio_trylock(c, folioId)) return false;
  c.k.folio_move_anon_rmap(c, folioId, vmaId);
  folio_unlock(c, folioId);
  return true;
}

/**
 * wp_page_copy (memory.c; §2.11): prepare the anon_vma, allocate a new
 * folio, map it exclusively, then drop the old mapping. With unshare the new
 * PTE stays read-only.
 */
export function wp_page_copy(c: Ctx, vmaId: Id, page: number, unshare: boolean): number {
  const v = vma(c, vmaId);
  const prepared = vmf_anon_prepare(c, vmaId);
  if (prepared !== 0) return prepared;
  const f = c.k.folio_alloc(c, 1);
  if (f === NIL) return VM_FAULT_OOM;
  pte_lock(c, v.mm);
  const old = mm(c, v.mm).ptes[page];
  if (old === undefined) {
    pte_unlock(c, v.mm);
    remove(c, 'folios', f);
    return 0;
  }
  // __wp_page_copy_user: the new page starts as a copy of the old (zeros for the zero page).
  copy_user_page(c, f, old.folio, old.sub);
  c.k.folio_add_new_anon_rmap(c, f, vmaId, page, true);
  set_pte_at(c, v.mm, page, { folio: f, sub: 0, writable: !unshare && (v.flags & VM_WRITE) !== 0 });
  if (old.folio !== ZERO_PAGE) {
    c.k.folio_remove_rmap_pte(c, old.folio);
    folio_put_last(c, old.folio);
  }
  pte_unlock(c, v.mm);
  return 0;
}

/** do_wp_page (memory.c; §2.11): write (or unshare) fault on a present read-only PTE: reuse or copy. */
export function do_wp_page(c: Ctx, vmaId: Id, page: number, unshare: boolean): number {
  const v = vmaR(c, vmaId);
  const pte = pteR(c, v.mm, page)!;
  if (pte.folio === ZERO_PAGE) return c.k.wp_page_copy(c, vmaId, page, unshare);
  const f = folio(c, pte.folio);
  if ((f.exclusive & (1 << pte.sub)) !== 0 || c.k.wp_can_reuse_anon_folio(c, pte.folio, vmaId)) {
    f.exclusive |= 1 << pte.sub;
    if (!unshare) {
      // wp_page_reuse: asserts the page is anon-exclusive, makes the PTE writable.
      if ((f.exclusive & (1 << pte.sub)) === 0) warn(c, 'wp_page_reuse: page not PageAnonExclusive');
      set_pte_at(c, v.mm, page, { folio: pte.folio, sub: pte.sub, writable: true });
    }
    return 0;
  }
  return c.k.wp_page_copy(c, vmaId, page, unshare);
}

/** handle_mm_fault (memory.c; §2.8) on an anonymous private VMA: a new page, or a write to a read-only one. */
export function handle_mm_fault(c: Ctx, vmaId: Id, page: number, write: boolean, large: boolean): number {
  const pte = pteR(c, vmaR(c, vmaId).mm, page);
  if (pte === undefined) return c.k.do_anonymous_page(c, vmaId, page, write, large);
  if (write && !pte.writable) return c.k.do_wp_page(c, vmaId, page, false);
  return 0;
}

/**
 * The fault runs under its VMA's lock (lock_vma_under_rcu), not under the
 * mmap lock: the kernel's FAULT_FLAG_VMA_LOCK, read here from the locks the
 * thread holds, so that a variant's override of a fault function need not
 * pass a flag along.
 */
function faultUnderVmaLock(c: Ctx): boolean {
  for (const h of c.held) if (h.cls === 'vma_lock') return true;
  return false;
}

/** release_fault_lock (include/linux/mm.h; §6.2): the VMA lock of a fault under it, else the mmap read lock. */
export function release_fault_lock(c: Ctx, mmId: Id, vmaId: Id): void {
  if (faultUnderVmaLock(c)) vma_end_read(c, vmaId);
  else mmap_read_unlock(c, mmId);
}

/** The access a fault needs is missing (access_error): the kernel sends SIGSEGV. */
const accessError = (c: Ctx, vmaId: Id, write: boolean): boolean => (vmaR(c, vmaId).flags & (write ? VM_WRITE : VM_READ)) === 0;

/**
 * do_user_addr_fault (arch/x86/mm/fault.c; §2.8, §6.2): first under the
 * VMA's own lock (lock_vma_under_rcu); when that fails, or the fault asks
 * for a retry (VM_FAULT_RETRY, the VMA lock already dropped), under the
 * mmap read lock (lock_mm_and_find_vma).
 */
export function do_user_fault(c: Ctx, mmId: Id, page: number, write: boolean, large = false): number {
  const locked = c.k.lock_vma_under_rcu(c, mmId, page);
  if (locked !== NIL) {
    if (accessError(c, locked, write)) {
      vma_end_read(c, locked);
      return VM_FAULT_SIGSEGV;
    }
    const ret = c.k.handle_mm_fault(c, locked, page, write, large);
    if (ret !== VM_FAULT_RETRY) {
      vma_end_read(c, locked);
      return ret;
    }
  }
  mmap_read_lock(c, mmId);
  const vmaId = vma_lookup(c, mmId, page);
  const ret = vmaId === NIL || accessError(c, vmaId, write) ? VM_FAULT_SIGSEGV : c.k.handle_mm_fault(c, vmaId, page, write, large);
  mmap_read_unlock(c, mmId);
  return ret;
}

/** lock_vma_under_rcu (mm/mmap_lock.c; §6.2): the VMA at page, read-locked, or NIL (none there, write-locked, or detached). */
export function lock_vma_under_rcu(c: Ctx, mmId: Id, page: number): Id {
  const vmaId = vma_lookup(c, mmId, page);
  if (vmaId === NIL || !vma_start_read(c, vmaId)) return NIL;
  return vmaId;
}

/**
 * pin_user_pages(FOLL_LONGTERM) on one present anon page: GUP must not pin
 * a page that is not exclusive (gup_must_unshare), so it first takes an
 * unshare fault; then the folio is pinned and the mm marked MMF_HAS_PINNED.
 */
export function pin_user_page(c: Ctx, mmId: Id, page: number): number {
  mmap_read_lock(c, mmId);
  let ret = 0;
  const vmaId = vma_lookup(c, mmId, page);
  const pte = mm(c, mmId).ptes[page];
  if (vmaId === NIL || pte === undefined || pte.folio === ZERO_PAGE) ret = -14;
  else {
    if ((folio(c, pte.folio).exclusive & (1 << pte.sub)) === 0) ret = c.k.do_wp_page(c, vmaId, page, true);
    const now = mm(c, mmId).ptes[page];
    if (ret === 0 && now !== undefined && now.folio !== ZERO_PAGE) {
      folio(c, now.folio).pinned = true;
      mm(c, mmId).hasPinned = true;
    }
  }
  mmap_read_unlock(c, mmId);
  return ret;
}

/**
 * copy_present_pte (memory.c; §2.7): share the page with the child
 * (clearing PageAnonExclusive, write-protecting both PTEs), or, for a
 * possibly pinned exclusive page, give the child its own copy.
 */
export function copy_present_pte(c: Ctx, dstVmaId: Id, srcVmaId: Id, page: number): number {
  const src = vmaR(c, srcVmaId);
  const dst = vma(c, dstVmaId);
  const pte = pteR(c, src.mm, page)!;
  if (pte.folio === ZERO_PAGE) {
    set_pte_at(c, dst.mm, page, { folio: pte.folio, sub: pte.sub, writable: pte.writable });
    return 0;
  }
  if (c.k.folio_try_dup_anon_rmap_pte(c, pte.folio, pte.sub, srcVmaId) === EBUSY) return c.k.copy_present_page(c, dstVmaId, page, pte.folio, pte.sub);
  if ((folio(c, pte.folio).exclusive & (1 << pte.sub)) !== 0) warn(c, 'copy_present_ptes: page still PageAnonExclusive after dup');
  // ptep_set_wrprotect on the parent's PTE, then the child's read-only copy.
  set_pte_at(c, src.mm, page, { folio: pte.folio, sub: pte.sub, writable: false });
  set_pte_at(c, dst.mm, page, { folio: pte.folio, sub: pte.sub, writable: false });
  return 0;
}

/**
 * copy_present_page (memory.c; §2.7): a possibly pinned exclusive page is not
 * shared with the child, which gets an immediate private copy of it
 * (copy_user_highpage), mapped exclusively.
 */
export function copy_present_page(c: Ctx, dstVmaId: Id, page: number, srcFolio: Id, sub: number): number {
  const dst = vmaR(c, dstVmaId);
  const f = c.k.folio_alloc(c, 1);
  if (f === NIL) return ENOMEM;
  copy_user_page(c, f, srcFolio, sub);
  c.k.folio_add_new_anon_rmap(c, f, dstVmaId, page, true);
  set_pte_at(c, dst.mm, page, { folio: f, sub: 0, writable: (dst.flags & VM_WRITE) !== 0 });
  return 0;
}

/** copy_page_range (memory.c; §2.7): only when the source VMA has an anon_vma (vma_needs_copy). */
export function copy_page_range(c: Ctx, dstVmaId: Id, srcVmaId: Id): number {
  const src = vmaR(c, srcVmaId);
  if (src.anonVma === NIL) return 0;
  const dst = vma(c, dstVmaId);
  pte_lock(c, src.mm);
  pte_lock(c, dst.mm);
  let ret = 0;
  for (let page = src.start; page < src.end && ret === 0; page++) {
    if (pteR(c, src.mm, page) !== undefined) ret = c.k.copy_present_pte(c, dstVmaId, srcVmaId, page);
  }
  pte_unlock(c, dst.mm);
  pte_unlock(c, src.mm);
  return ret;
}

/** zap_pte_range / zap_present_folio_ptes (memory.c; §5): clear the PTEs, drop mapcounts, free unmapped folios. */
export function zap_pte_range(c: Ctx, vmaId: Id, start: number, end: number): void {
  const v = vmaR(c, vmaId);
  pte_lock(c, v.mm);
  const freed: Id[] = [];
  for (let page = Math.max(start, v.start); page < Math.min(end, v.end); page++) {
    const pte = pteR(c, v.mm, page);
    if (pte === undefined) continue;
    pte_clear(c, v.mm, page);
    if (pte.folio === ZERO_PAGE) continue;
    c.k.folio_remove_rmap_pte(c, pte.folio);
    freed.push(pte.folio);
  }
  pte_unlock(c, v.mm);
  // __tlb_remove_folio_pages: the reference is dropped after the TLB flush.
  for (const f of freed) if (c.s.folios[f] !== undefined) folio_put_last(c, f);
}

/**
 * unmap_vmas / unmap_single_vma (memory.c; §5): zap the PTEs of each given
 * VMA within [start, end) only (each VMA's range clipped to it): munmap
 * passes its own range, exit_mmap everything. (The digest's §5 says "every
 * detached VMA"; the kernel clips, which matters when a split went wrong.)
 */
export function unmap_vmas(c: Ctx, vmaIds: readonly Id[], start: number, end: number): void {
  for (const id of vmaIds) c.k.zap_pte_range(c, id, start, end);
}

/** The end of the address space, for exit_mmap's unmap_vmas over everything (ULONG_MAX). */
export const USER_END = Number.MAX_SAFE_INTEGER;

/** free_pgtables (memory.c; §5): unlink_anon_vmas for each VMA (PTEs are already zapped). */
export function free_pgtables(c: Ctx, vmaIds: readonly Id[]): void {
  for (const id of vmaIds) {
    // vma_start_write when the mm is write-locked (exit_mmap; munmap has downgraded to read).
    const v = vmaR(c, id);
    if (peek(mmR(c, v.mm), 'mmapLock').writer === c.thread) vma_start_write(c, id);
    c.k.unlink_anon_vmas(c, id);
  }
}

// mm/mmap.c and the munmap path of mm/vma.c: fixed-address anonymous mmap,
// fork's dup_mmap, exit_mmap, munmap. Digest §2.7, §3.7, §5.
import { insert, mmVmas, remove, vma, vmaR, warn, type Ctx } from './ctx.ts';
import { mmap_read_lock, mmap_read_unlock, mmap_write_downgrade, mmap_write_lock, mmap_write_lock_killable, mmap_write_unlock, vma_start_write, vma_start_write_killable } from './locks.ts';
import { ENOMEM } from './rmap.ts';
import { NIL, RECORD, newMm, type Id } from './state.ts';
import { lock_point } from './sched.ts';
import { USER_END } from './memory.ts';
import { find_vma, vma_attach, vma_detach, vma_next_from, vma_prev_of, vmg_state } from './vma.ts';

/** mm_alloc for a new process; the caller picks the id (the next free process slot). */
export function mm_alloc(c: Ctx, id: Id, parent: Id): Id {
  if (c.s.nextId.mm <= id) c.s.nextId.mm = id + 1;
  insert(c, 'mms', id, newMm(id, parent));
  return id;
}

/** do_mmap's answer to MAP_FIXED_NOREPLACE over a mapping. */
export const EEXIST = -17;

/**
 * __mmap_region for MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED on a free range
 * (mm/vma.c; §3.7): merge with a neighbour through vma_merge_new_range, else
 * a new VMA with pgoff = addr. Returns 0 or -ENOMEM.
 */
export function do_mmap(c: Ctx, mmId: Id, addr: number, len: number, flags: number, hasClose: boolean): number {
  mmap_write_lock_killable(c, mmId);
  const end = addr + len;
  // MAP_FIXED_NOREPLACE: the range was free when the syscall was issued; at
  // lock granularity another thread of the mm may have mapped it since.
  const hit = find_vma(c, mmId, addr);
  if (hit !== NIL && vmaR(c, hit).start < end) {
    mmap_write_unlock(c, mmId);
    return EEXIST;
  }
  const prev = vma_prev_of(c, mmId, addr);
  const next = vma_next_from(c, mmId, end);
  let merged = NIL;
  // A VMA with vm_ops (->close) is set up by its driver after the merge attempt; it never merges as new.
  if (!hasClose && (prev !== NIL || next !== NIL)) {
    const g = vmg_state(c, mmId, prev, NIL, addr, end, flags, addr);
    g.next = next;
    merged = c.k.vma_merge_new_range(c, g);
  }
  let ret = 0;
  if (merged === NIL) {
    const id = c.k.vm_area_alloc(c, mmId, addr, end, addr, flags, hasClose);
    if (id === NIL) ret = ENOMEM;
    else if (!c.k.vma_iter_prealloc(c)) {
      c.k.vm_area_free(c, id);
      ret = ENOMEM;
    } else {
      // __mmap_new_vma: the new VMA is write-locked before it is in the tree, so no fault sees it half set up.
      vma_start_write(c, id);
      vma_attach(c, id);
    }
  }
  mmap_write_unlock(c, mmId);
  return ret;
}

/**
 * The anon_vmas of pvma's chain a fork may adopt right now (§2.4, bug-corpus
 * I5): no VMA uses them and they have fewer than two children. Taken before
 * each anon_vma_fork, whatever implementation of it a variant uses.
 */
function reuseEligible(c: Ctx, pvmaId: Id): Set<Id> {
  const out = new Set<Id>();
  for (const id of vmaR(c, pvmaId).chain) {
    const a = c.s.anonVmas[c.s.avcs[id]!.anonVma]!;
    if (a.numActiveVmas === 0 && a.numChildren < 2) out.add(a.id);
  }
  return out;
}

/** Record a fork that adopted (rather than allocated) an anon_vma outside the eligible set. */
function checkForkReuse(c: Ctx, vmaId: Id, pvmaId: Id, eligible: Set<Id>): void {
  const adopted = vmaR(c, vmaId).anonVma;
  if (adopted === NIL) return;
  // A fresh anon_vma's tree holds only the new VMA; an adopted one also holds the parent's.
  const tree = c.s.anonVmas[adopted]!.tree;
  const fresh = tree.length === 1 && c.s.avcs[tree[0]!]!.vma === vmaId;
  if (!fresh && !eligible.has(adopted)) warn(c, `${RECORD.forkReuse} P${vmaR(c, vmaId).mm} adopted A${adopted}, which had a VMA or two children`);
}

/**
 * dup_mm (kernel/fork.c): a new mm with the next process id never used,
 * dup_mmap, and on failure mmput -> exit_mmap of the partial child.
 */
export function dup_mm(c: Ctx, parentId: Id): number {
  const child = mm_alloc(c, c.s.nextId.mm, parentId);
  return c.k.dup_mm_finish(c, child, c.k.dup_mmap(c, child, parentId));
}

/** dup_mm (kernel/fork.c; §2.7) after dup_mmap: a failed fork tears the partial child down (mmput). */
export function dup_mm_finish(c: Ctx, childId: Id, ret: number): number {
  if (ret !== 0) c.k.exit_mmap(c, childId);
  return ret;
}

/**
 * dup_mmap (mm/mmap.c; §2.7): under both mmap write locks, for each parent
 * VMA: vm_area_dup, anon_vma_fork, link, copy_page_range. On failure the
 * partial child is torn down (the caller's mmput -> exit_mmap).
 */
export function dup_mmap(c: Ctx, childId: Id, parentId: Id): number {
  mmap_write_lock_killable(c, parentId);
  mmap_write_lock(c, childId);
  const ret = c.k.dup_mmap_vmas(c, childId, parentId, [...mmVmas(c, parentId)], 0);
  return c.k.dup_mmap_finish(c, childId, parentId, ret);
}

/** The end of dup_mmap (mm/mmap.c; §2.7): drop both mmap locks. */
export function dup_mmap_finish(c: Ctx, childId: Id, parentId: Id, ret: number): number {
  mmap_write_unlock(c, childId);
  mmap_write_unlock(c, parentId);
  return ret;
}

/**
 * dup_mmap's loop (mm/mmap.c; §2.7) from the VMA at position `from` of the
 * parent's VMAs as they were when the fork began. At lock granularity each
 * VMA's anon_vma_fork (anon_vma lock) and copy_page_range (PTLs) start steps.
 */
export function dup_mmap_vmas(c: Ctx, childId: Id, parentId: Id, vmas: Id[], from: number): number {
  for (let i = from; i < vmas.length; i++) {
    if (i > 0) lock_point(c, 'dup_mmap_vma', { vmas: vmas.slice(i), mms: [childId, parentId] });
    const mpnt = vmas[i]!;
    // The parent VMA is write-locked for the rest of the fork: a per-VMA-lock fault must not change it or its PTEs under the copy (§2.7).
    vma_start_write_killable(c, mpnt);
    const tmp = c.k.vm_area_dup(c, mpnt);
    if (tmp === NIL) return ENOMEM;
    vma(c, tmp).mm = childId;
    const eligible = reuseEligible(c, mpnt);
    if (c.k.anon_vma_fork(c, tmp, mpnt) !== 0) {
      c.k.vm_area_free(c, tmp);
      return ENOMEM;
    }
    checkForkReuse(c, tmp, mpnt, eligible);
    // __mt_dup preallocated the tree: this store cannot fail.
    vma_attach(c, tmp);
    lock_point(c, 'copy_page_range', { vmas: [tmp, ...vmas.slice(i)], mms: [childId, parentId] });
    const ret = c.k.copy_page_range(c, tmp, mpnt);
    if (ret !== 0) return ret;
  }
  return 0;
}

/**
 * exit_mmap (mm/mmap.c; §5): zap under the read lock, then free page tables
 * and VMAs under the write lock. At lock granularity the second part, which
 * takes the anon_vma locks in unlink_anon_vmas, is a step of its own.
 */
export function exit_mmap(c: Ctx, mmId: Id): void {
  mmap_read_lock(c, mmId);
  const vmas = [...mmVmas(c, mmId)];
  c.k.unmap_vmas(c, vmas, 0, USER_END);
  mmap_read_unlock(c, mmId);
  lock_point(c, 'exit_mmap_free', { mms: [mmId], vmas });
  c.k.exit_mmap_free(c, mmId, vmas);
}

/** exit_mmap (mm/mmap.c; §5) after the zap: free_pgtables and the VMAs under the write lock, then the mm goes. */
export function exit_mmap_free(c: Ctx, mmId: Id, vmas: readonly Id[]): void {
  mmap_write_lock(c, mmId);
  c.k.free_pgtables(c, vmas);
  for (const id of vmas) {
    vma_detach(c, id);
    c.k.vm_area_free(c, id);
  }
  mmap_write_unlock(c, mmId);
  remove(c, 'mms', mmId);
}

/**
 * do_vmi_munmap / do_vmi_align_munmap (mm/vma.c; §5): split at the edges,
 * detach, then (downgraded to the read lock when `unlock`) zap and unlink.
 * Splits that succeeded before a failure are not undone.
 */
export function do_vmi_munmap(c: Ctx, mmId: Id, start: number, len: number, unlock: boolean): number {
  const end = start + len;
  const first = find_vma(c, mmId, start);
  if (first === NIL || vmaR(c, first).start >= end) {
    if (unlock) mmap_write_unlock(c, mmId);
    return 0;
  }
  // vms_gather_munmap_vmas
  if (start > vmaR(c, first).start) {
    const err = c.k.__split_vma(c, first, start, true);
    if (err !== 0) return err;
  }
  const detached: Id[] = [];
  for (;;) {
    const id = find_vma(c, mmId, start);
    if (id === NIL || vmaR(c, id).start >= end) break;
    if (vmaR(c, id).end > end) {
      const err = c.k.__split_vma(c, id, end, false);
      if (err !== 0) {
        for (const d of detached) vma_attach(c, d); // reattach_vmas
        return err;
      }
    }
    // vms_gather_munmap_vmas: each VMA is write-locked before it is detached (§5).
    vma_start_write(c, id);
    vma_detach(c, id);
    detached.push(id);
  }
  // vms_complete_munmap_vmas: the point of no return.
  if (unlock) {
    mmap_write_downgrade(c, mmId);
    lock_point(c, 'unmap_vmas', { vmas: detached, nums: [start, end] });
  }
  return c.k.vms_clear_ptes(c, mmId, detached, unlock, start, end);
}

/**
 * vms_clear_ptes (mm/vma.c; §5): zap the detached VMAs (PTLs), then free
 * their page tables, which unlinks their anon_vmas (anon_vma lock), and
 * free them. At lock granularity (the munmap syscall, downgraded to the
 * read lock) each part starts a step.
 */
export function vms_clear_ptes(c: Ctx, mmId: Id, detached: Id[], unlock: boolean, start: number, end: number): number {
  c.k.unmap_vmas(c, detached, start, end);
  if (unlock) lock_point(c, 'free_pgtables', { vmas: detached });
  return c.k.vms_free_vmas(c, mmId, detached, unlock);
}

/** free_pgtables and remove_vma for the detached VMAs, then the read unlock (vms_complete_munmap_vmas, mm/vma.c; §5). */
export function vms_free_vmas(c: Ctx, mmId: Id, detached: Id[], unlock: boolean): number {
  c.k.free_pgtables(c, detached);
  for (const id of detached) c.k.vm_area_free(c, id);
  if (unlock) mmap_read_unlock(c, mmId);
  return 0;
}

/** __vm_munmap (mm/vma.c; §5): the munmap(2) syscall. */
export function vm_munmap(c: Ctx, mmId: Id, start: number, len: number): number {
  mmap_write_lock_killable(c, mmId);
  const ret = c.k.do_vmi_munmap(c, mmId, start, len, true);
  if (ret !== 0) mmap_write_unlock(c, mmId);
  return ret;
}

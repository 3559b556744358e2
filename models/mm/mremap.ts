// mm/mremap.c: moving, shrinking and expanding anonymous mappings, the page
// table move with need_rmap_locks, the error fallback that moves back, and
// MREMAP_DONTUNMAP. Digest §4. (MREMAP_RELOCATE_ANON, which is not in
// mainline, hooks in at should_relocate_anon.)
import { allocOk, mm, peek, pte_clear, pteR, set_pte_at, vmaR, warn, type Ctx } from './ctx.ts';
import { anon_vma_lock_write, anon_vma_unlock_write, mmap_write_lock_killable, mmap_write_unlock, pte_lock, pte_unlock, vma_start_write } from './locks.ts';
import { ENOMEM } from './rmap.ts';
import { NIL, type Id } from './state.ts';
import { find_vma, vma_lookup } from './vma.ts';
import { lock_point } from './sched.ts';

export const EINVAL = -22;
export const EFAULT = -14;

export interface MremapFlags {
  maymove: boolean;
  fixed: boolean;
  dontunmap: boolean;
  relocate: boolean;
}

/** struct vma_remap_struct (mremap.c), reduced to what the model needs. */
export interface Vrm {
  mm: Id;
  vma: Id;
  addr: number;
  oldLen: number;
  newAddr: number;
  newLen: number;
  flags: MremapFlags;
}

/** struct pagetable_move_control (mm/internal.h). */
export interface Pmc {
  old: Id;
  new: Id;
  oldAddr: number;
  newAddr: number;
  len: number;
  needRmapLocks: boolean;
  /** The VMA whose anon_vma is write-locked for MREMAP_RELOCATE_ANON (RFC, seed 002); mainline never sets it. */
  relocateLocked?: Id;
  /** The error fallback's move back (copy_vma_and_data_finish): it runs within the step that decides it. */
  revert?: boolean;
}

/** The range [start, start + len) holds no VMA of mm. */
export function range_is_free(c: Ctx, mmId: Id, start: number, len: number): boolean {
  const id = find_vma(c, mmId, start);
  return id === NIL || vmaR(c, id).start >= start + len;
}

/** take_rmap_locks (mremap.c; §4): the old VMA's anon_vma (root) write lock. */
export function take_rmap_locks(c: Ctx, p: Pmc): void {
  const a = vmaR(c, p.old).anonVma;
  if (a !== NIL) anon_vma_lock_write(c, a);
}

/** drop_rmap_locks (mremap.c; §4). */
export function drop_rmap_locks(c: Ctx, p: Pmc): void {
  const a = vmaR(c, p.old).anonVma;
  if (a !== NIL) anon_vma_unlock_write(c, a);
}

/**
 * move_ptes (mremap.c; §4): under the rmap locks when needed and both PTLs,
 * move each present PTE from old to new. No folio field changes.
 */
export function move_ptes(c: Ctx, p: Pmc): void {
  if (p.needRmapLocks) {
    c.k.take_rmap_locks(c, p);
    // The PTL is taken with the anon_vma lock held: a walker's trylock can find it write-held (§2.12 slow path).
    if (!p.revert) lock_point(c, 'move_ptes');
  }
  c.k.move_ptes_pte_locked(c, p);
}

/** move_ptes (mremap.c; §4, §6.1) from the PTL on: move the PTEs, then drop the PTL and the rmap locks. */
export function move_ptes_pte_locked(c: Ctx, p: Pmc): void {
  const mmId = vmaR(c, p.old).mm;
  pte_lock(c, mmId);
  for (let i = 0; i < p.len; i++) {
    const pte = pteR(c, mmId, p.oldAddr + i);
    if (pteR(c, mmId, p.newAddr + i) !== undefined) warn(c, 'move_ptes: destination pte not none');
    if (pte === undefined) continue;
    pte_clear(c, mmId, p.oldAddr + i);
    set_pte_at(c, mmId, p.newAddr + i, pte);
  }
  pte_unlock(c, mmId);
  if (p.needRmapLocks) c.k.drop_rmap_locks(c, p);
}

/** move_page_tables (mremap.c; §4): returns the pages moved (0 when pte_alloc of the destination fails). */
export function move_page_tables(c: Ctx, p: Pmc): number {
  if (p.len === 0) return 0;
  if (!allocOk(c, 'pte')) return 0;
  c.k.move_ptes(c, p);
  return p.len;
}


/** The flags of an mremap as bits (a thread's locals are numbers). */
export function mremapFlagBits(f: MremapFlags): number {
  return (f.maymove ? 1 : 0) | (f.fixed ? 2 : 0) | (f.dontunmap ? 4 : 0) | (f.relocate ? 8 : 0);
}
export function mremapFlagsOf(bits: number): MremapFlags {
  return { maymove: (bits & 1) !== 0, fixed: (bits & 2) !== 0, dontunmap: (bits & 4) !== 0, relocate: (bits & 8) !== 0 };
}

/** What a lock point of move_vma saves: the request, the two VMAs, the move. */
export function moveLocals(vrm: Vrm, newVma: Id, p: Pmc, moved: number): { vmas: Id[]; nums: number[] } {
  return {
    vmas: [vrm.vma, newVma],
    nums: [vrm.addr, vrm.oldLen, vrm.newAddr, vrm.newLen, mremapFlagBits(vrm.flags), p.needRmapLocks ? 1 : 0, moved],
  };
}

/** The request, the new VMA, the page-table move and the pages moved, as moveLocals saved them. */
export function restoreMove(mmId: Id, vmas: readonly Id[], n: readonly number[]): { vrm: Vrm; newVma: Id; pmc: Pmc; moved: number } {
  const vrm: Vrm = { mm: mmId, vma: vmas[0]!, addr: n[0]!, oldLen: n[1]!, newAddr: n[2]!, newLen: n[3]!, flags: mremapFlagsOf(n[4]!) };
  const pmc: Pmc = { old: vmas[0]!, new: vmas[1]!, oldAddr: n[0]!, newAddr: n[2]!, len: n[1]!, needRmapLocks: n[5] === 1 };
  return { vrm, newVma: vmas[1]!, pmc, moved: n[6]! };
}

/**
 * copy_vma_and_data (mremap.c; §4): create or merge the destination, move
 * the page tables, and on failure move them back and retarget vrm at the
 * new area so that it is the one unmapped. At lock granularity the page
 * table move is a step of its own (it starts at take_rmap_locks or the PTL),
 * and so is what follows it (it starts at the anon_vma lock of the unmap).
 */
export function copy_vma_and_data(c: Ctx, vrm: Vrm): { err: number; newVma: Id } {
  const v = vmaR(c, vrm.vma);
  const newPgoff = v.pgoff + (vrm.addr - v.start);
  const r = c.k.copy_vma(c, vrm.vma, vrm.newAddr, vrm.newLen, newPgoff);
  if (r === null) return { err: ENOMEM, newVma: NIL };
  vrm.vma = r.vma;
  const pmc: Pmc = { old: r.vma, new: r.newVma, oldAddr: vrm.addr, newAddr: vrm.newAddr, len: vrm.oldLen, needRmapLocks: r.needRmapLocks };
  lock_point(c, 'move_page_tables', moveLocals(vrm, r.newVma, pmc, 0));
  return c.k.copy_vma_and_data_move(c, vrm, r.newVma, pmc);
}

/** copy_vma_and_data (mremap.c; §4) from move_page_tables on. */
export function copy_vma_and_data_move(c: Ctx, vrm: Vrm, newVma: Id, pmc: Pmc): { err: number; newVma: Id } {
  return c.k.copy_vma_and_data_moved(c, vrm, newVma, pmc, c.k.move_page_tables(c, pmc));
}

/** copy_vma_and_data (mremap.c; §4) once move_page_tables moved `moved` pages: the rest starts at the unmap's locks. */
export function copy_vma_and_data_moved(c: Ctx, vrm: Vrm, newVma: Id, pmc: Pmc, moved: number): { err: number; newVma: Id } {
  lock_point(c, 'copy_vma_and_data_finish', moveLocals(vrm, newVma, pmc, moved));
  return c.k.copy_vma_and_data_finish(c, vrm, newVma, moved);
}

/** copy_vma_and_data (mremap.c; §4) after the page-table move: on a short move, move back and retarget vrm at the new area. */
export function copy_vma_and_data_finish(c: Ctx, vrm: Vrm, newVma: Id, moved: number): { err: number; newVma: Id } {
  let err = 0;
  if (moved < vrm.oldLen) err = ENOMEM;
  if (err !== 0) {
    const revert: Pmc = { old: newVma, new: vrm.vma, oldAddr: vrm.newAddr, newAddr: vrm.addr, len: moved, needRmapLocks: true, revert: true };
    c.k.move_page_tables(c, revert);
    vrm.vma = newVma;
    vrm.oldLen = vrm.newLen;
    vrm.addr = vrm.newAddr;
  }
  return { err, newVma };
}

/** dontunmap_complete (mremap.c; §4): the whole old VMA moved: drop its anon_vma links, it stays mapped and unfaulted. */
export function dontunmap_complete(c: Ctx, vrm: Vrm, newVma: Id): void {
  const v = vmaR(c, vrm.vma);
  if (newVma !== vrm.vma && vrm.addr === v.start && vrm.addr + vrm.oldLen === v.end) c.k.unlink_anon_vmas(c, vrm.vma);
}

/** move_vma (mremap.c; §4). */
export function move_vma(c: Ctx, vrm: Vrm): number {
  // The source VMA is write-locked against per-VMA-lock faults before anything moves (§4 step 3).
  vma_start_write(c, vrm.vma);
  return c.k.move_vma_finish(c, vrm, c.k.copy_vma_and_data(c, vrm));
}

/** move_vma after copy_vma_and_data: DONTUNMAP's completion, or the unmap of the old range. */
export function move_vma_finish(c: Ctx, vrm: Vrm, moved: { err: number; newVma: Id }): number {
  const { err, newVma } = moved;
  if (err !== 0 && newVma === NIL) return err;
  if (err === 0 && vrm.flags.dontunmap) c.k.dontunmap_complete(c, vrm, newVma);
  else c.k.do_vmi_munmap(c, vrm.mm, vrm.addr, vrm.oldLen, false);
  return err;
}

/** The VMA holding [addr, addr + len), or an error (vma_lookup + resize_is_valid). */
function lookupRange(c: Ctx, mmId: Id, addr: number, len: number): Id | number {
  const id = vma_lookup(c, mmId, addr);
  if (id === NIL) return EFAULT;
  if (len > vmaR(c, id).end - addr) return EFAULT;
  return id;
}

/** mremap_to (mremap.c; §4): FIXED unmaps the target first; shrink first; then move. */
export function mremap_to(c: Ctx, vrm: Vrm): number {
  if (vrm.flags.fixed) {
    if (vrm.addr < vrm.newAddr + vrm.newLen && vrm.newAddr < vrm.addr + vrm.oldLen) return EINVAL;
    const err = c.k.do_vmi_munmap(c, vrm.mm, vrm.newAddr, vrm.newLen, false);
    if (err !== 0) return err;
  }
  if (vrm.oldLen > vrm.newLen) {
    const err = c.k.do_vmi_munmap(c, vrm.mm, vrm.addr + vrm.newLen, vrm.oldLen - vrm.newLen, false);
    if (err !== 0) return err;
    vrm.oldLen = vrm.newLen;
  }
  const found = lookupRange(c, vrm.mm, vrm.addr, vrm.oldLen);
  if (found < 0) return found;
  vrm.vma = found;
  if (!vrm.flags.fixed && !range_is_free(c, vrm.mm, vrm.newAddr, vrm.newLen)) return ENOMEM;
  return c.k.move_vma(c, vrm);
}

/** mremap_at (mremap.c; §4): in place: shrink, expand through vma_merge_extend, or move if MAYMOVE. */
export function mremap_at(c: Ctx, vrm: Vrm): number {
  const found = lookupRange(c, vrm.mm, vrm.addr, vrm.oldLen);
  if (found < 0) return found;
  vrm.vma = found;
  if (vrm.newLen === vrm.oldLen) return 0;
  if (vrm.newLen < vrm.oldLen) return c.k.do_vmi_munmap(c, vrm.mm, vrm.addr + vrm.newLen, vrm.oldLen - vrm.newLen, false);
  const v = vmaR(c, found);
  const delta = vrm.newLen - vrm.oldLen;
  if (vrm.addr + vrm.oldLen === v.end && range_is_free(c, vrm.mm, v.end, delta)) {
    return c.k.vma_merge_extend(c, found, delta) === NIL ? ENOMEM : 0;
  }
  if (!vrm.flags.maymove) return ENOMEM;
  if (!range_is_free(c, vrm.mm, vrm.newAddr, vrm.newLen)) return ENOMEM;
  return c.k.move_vma(c, vrm);
}

/** do_mremap (mremap.c; §4): parameter checks, then everything under the mmap write lock. */
/**
 * check_mremap_params (mremap.c; §4): the checks made before any lock. 7.x
 * knows MAYMOVE, FIXED and DONTUNMAP only, so MREMAP_RELOCATE_ANON (an RFC)
 * is an unknown flag: -EINVAL.
 */
export function check_mremap_params(_c: Ctx, vrm: Vrm): number {
  const f = vrm.flags;
  if (f.relocate) return EINVAL;
  if (vrm.newLen === 0) return EINVAL;
  if ((f.fixed || f.dontunmap) && !f.maymove) return EINVAL;
  if (f.dontunmap && vrm.oldLen !== vrm.newLen) return EINVAL;
  return 0;
}

export function do_mremap(c: Ctx, mmId: Id, addr: number, oldLen: number, newAddr: number, newLen: number, flags: MremapFlags): number {
  const vrm: Vrm = { mm: mmId, vma: NIL, addr, oldLen, newAddr, newLen, flags };
  const err = c.k.check_mremap_params(c, vrm);
  if (err !== 0) return err;
  mmap_write_lock_killable(c, mmId);
  const ret = flags.fixed || flags.dontunmap ? c.k.mremap_to(c, vrm) : c.k.mremap_at(c, vrm);
  mmap_write_unlock(c, mmId);
  return ret;
}

// mm/mprotect.c: changing protection over a range, which merges or splits
// VMAs through vma_modify. Digest §3.6, §3.10, §6.2.
import { pteR, set_pte_at, vma, vmaR, type Ctx } from './ctx.ts';
import { mmap_write_lock_killable, mmap_write_unlock, vma_start_write } from './locks.ts';
import { ENOMEM } from './rmap.ts';
import { NIL, VM_ACCESS_FLAGS, VM_WRITE, type Id } from './state.ts';
import { find_vma, vma_prev_of, vmg_state } from './vma.ts';

/** change_protection: removing write permission write-protects the PTEs of the range. */
export function change_protection(c: Ctx, vmaId: Id, start: number, end: number): void {
  const v = vmaR(c, vmaId);
  if ((v.flags & VM_WRITE) !== 0) return;
  for (let page = start; page < end; page++) {
    const pte = pteR(c, v.mm, page);
    if (pte !== undefined && pte.writable) set_pte_at(c, v.mm, page, { folio: pte.folio, sub: pte.sub, writable: false });
  }
}

/** mprotect_fixup (mprotect.c): vma_modify_flags, then set the flags on the VMA covering [start, end). Returns [err, vma]. */
export function mprotect_fixup(c: Ctx, vmaId: Id, prev: Id, start: number, end: number, newflags: number): [number, Id] {
  const v = vmaR(c, vmaId);
  if (newflags === v.flags) return [0, vmaId];
  const g = vmg_state(c, v.mm, prev, vmaId, start, end, newflags, v.pgoff + (start - v.start));
  const [err, res] = c.k.vma_modify(c, g);
  if (err !== 0) return [err, NIL];
  // vm_flags_reset under the VMA write lock, against per-VMA-lock faults (§6.2).
  vma_start_write(c, res);
  vma(c, res).flags = newflags;
  c.k.change_protection(c, res, start, end);
  return [0, res];
}

/** do_mprotect_pkey (mprotect.c): every VMA of [start, start + len) in turn; a hole is -ENOMEM after the earlier ones changed. */
export function do_mprotect(c: Ctx, mmId: Id, start: number, len: number, prot: number): number {
  const end = start + len;
  mmap_write_lock_killable(c, mmId);
  let ret = 0;
  const first = find_vma(c, mmId, start);
  if (first === NIL || vmaR(c, first).start >= end || vmaR(c, first).start > start) ret = ENOMEM;
  else {
    let prev = start > vmaR(c, first).start ? first : vma_prev_of(c, mmId, vmaR(c, first).start);
    let cur = first;
    let nstart = start;
    for (;;) {
      const v = vmaR(c, cur);
      if (v.start > nstart) {
        ret = ENOMEM;
        break;
      }
      const tmp = Math.min(v.end, end);
      const [err, res] = c.k.mprotect_fixup(c, cur, prev, nstart, tmp, (v.flags & ~VM_ACCESS_FLAGS) | prot);
      if (err !== 0) {
        ret = err;
        break;
      }
      prev = res;
      nstart = tmp;
      if (nstart >= end) break;
      cur = find_vma(c, mmId, nstart);
      if (cur === NIL || vmaR(c, cur).start >= end) {
        ret = ENOMEM;
        break;
      }
    }
  }
  mmap_write_unlock(c, mmId);
  return ret;
}

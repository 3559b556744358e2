// Transition properties (issue 13): properties of (state before, operation,
// state after), the state after carrying the syscall's result (State.result).
// Both compare what a page means to its process before and after: mapped or
// not, protection, the linear page index (vm_pgoff), the PTE (folio page,
// writable) and the content; failure-atomic also the page's anon_vma links.
// At lock granularity a syscall that spans several steps has no single
// "before" state: only syscalls that complete in the transition that issues
// them are checked (all of them at syscall granularity).
import type { Property } from '../src/engine/model.ts';
import { formatOp, formatResult, isSyscall, protName, type Op, type SyscallOp } from '../models/mm/ops.ts';
import { NIL, USER_ZERO, VM_ACCESS_FLAGS, ZERO_PAGE, type Id, type Mm, type State, type Vma } from '../models/mm/state.ts';
import { contentName } from './user.ts';

/** The action is a syscall that completed in this transition (its result is after.result). */
function completed(action: Op, after: State): action is SyscallOp {
  const r = after.result;
  return r !== undefined && isSyscall(action) && r.proc === action.proc;
}

const NO_DIFF: PageDiff[] = [];

/** The pages of mm worth comparing: up to its last PTE or the end of its last VMA (they are sorted). */
function pagesOf(s: State, m: Mm): number {
  const n = m.vmas.length;
  return n === 0 ? m.ptes.length : Math.max(m.ptes.length, s.vmas[m.vmas[n - 1]!]?.end ?? 0);
}

/**
 * A walk over mm's VMAs (sorted, disjoint) by ascending page, without
 * allocating: this runs on every munmap, mprotect and mremap the explorer
 * generates. at(page) is the VMA covering page, for pages asked in order.
 */
class VmaCursor {
  private s!: State;
  private ids: readonly Id[] = [];
  private i = 0;
  reset(s: State, m: Mm): this {
    this.s = s;
    this.ids = m.vmas;
    this.i = 0;
    return this;
  }
  at(page: number): Vma | undefined {
    const { ids, s } = this;
    while (this.i < ids.length && s.vmas[ids[this.i]!]!.end <= page) this.i++;
    const v = this.i < ids.length ? s.vmas[ids[this.i]!] : undefined;
    return v !== undefined && v.start <= page ? v : undefined;
  }
}
const beforeAt = new VmaCursor();
const afterAt = new VmaCursor();

/** The content a PTE shows (zeros without a PTE or for the zero page). */
function content(s: State, m: Mm, page: number): number {
  const pte = m.ptes[page];
  if (pte === undefined || pte.folio === ZERO_PAGE) return USER_ZERO;
  return s.folios[pte.folio]?.data[pte.sub] ?? NaN;
}

/** The anon_vmas on a VMA's chain, sorted, as a key. */
function chainKey(s: State, v: Vma): string {
  return v.chain
    .map((id) => s.avcs[id]?.anonVma ?? NIL)
    .sort((a, b) => a - b)
    .join(',');
}

export interface PageDiff {
  mm: Id;
  page: number;
  what: string;
}

/** What may differ at a page. */
interface Allow {
  /** The anon_vma links (vma->anon_vma and the chain's anon_vmas). false: not compared. */
  links: boolean | ((page: number, b: Vma, a: Vma) => boolean);
  /** The protection may end as this (mprotect's new prot). */
  prot?: number;
  /** The PTE may lose its write bit (COW write-protect, mprotect). */
  wrprotect?: boolean;
  /** The page may end unmapped, or mapped without a PTE (zeros). */
  unmapOrEmpty?: boolean;
}

/** The first difference in what page means to process mmId between before and after, or undefined. */
function pageDiff(b: State, a: State, bm: Mm, am: Mm, page: number, bv: Vma | undefined, av: Vma | undefined, allow: Allow): string | undefined {
  if (bv === av) {
    // The same VMA record and PTE, and the folio record untouched: nothing about the page changed.
    const pte = bm.ptes[page];
    if (bv === undefined || (pte === am.ptes[page] && (pte === undefined || pte.folio < 0 || b.folios[pte.folio] === a.folios[pte.folio]))) return undefined;
  }
  if (av === undefined) return allow.unmapOrEmpty ? undefined : 'was mapped, is unmapped';
  if (bv === undefined) return allow.unmapOrEmpty && am.ptes[page] === undefined ? undefined : 'was unmapped, is mapped';
  if (allow.unmapOrEmpty && am.ptes[page] === undefined) return undefined;
  const bp = bv.flags & VM_ACCESS_FLAGS;
  const ap = av.flags & VM_ACCESS_FLAGS;
  if (bp !== ap && ap !== allow.prot) return `prot ${protName(bp)} -> ${protName(ap)}`;
  if ((bv.flags & ~VM_ACCESS_FLAGS) !== (av.flags & ~VM_ACCESS_FLAGS)) return `vm_flags ${bv.flags} -> ${av.flags}`;
  const bl = bv.pgoff + page - bv.start;
  const al = av.pgoff + page - av.start;
  if (bl !== al) return `linear page index ${bl} -> ${al}`;
  const bpte = bm.ptes[page];
  const apte = am.ptes[page];
  if (bpte !== apte) {
    if (bpte === undefined || apte === undefined) return `PTE ${bpte === undefined ? 'none' : `F${bpte.folio}`} -> ${apte === undefined ? 'none' : `F${apte.folio}`}`;
    if (bpte.folio !== apte.folio || bpte.sub !== apte.sub) return `PTE F${bpte.folio}/${bpte.sub} -> F${apte.folio}/${apte.sub}`;
    if (bpte.writable !== apte.writable && !(allow.wrprotect && !apte.writable)) return `PTE ${bpte.writable ? 'writable' : 'read-only'} -> ${apte.writable ? 'writable' : 'read-only'}`;
  }
  const bc = content(b, bm, page);
  const ac = content(a, am, page);
  if (bc !== ac && !(Number.isNaN(bc) && Number.isNaN(ac))) return `content ${contentName(bc)} -> ${contentName(ac)}`;
  if (allow.links !== false && bv !== av) {
    const same = bv.anonVma === av.anonVma && (bv.chain === av.chain || chainKey(b, bv) === chainKey(a, av));
    if (!same && (allow.links === true || !allow.links(page, bv, av)))
      return `anon_vma A${bv.anonVma} chain [${chainKey(b, bv)}] -> A${av.anonVma} chain [${chainKey(a, av)}]`;
  }
  return undefined;
}

/**
 * Every page of every process, but the pages of `skip`'s range in its
 * process, compared with allow (one for every page, or per page). Processes
 * whose mm record and VMAs are the same objects before and after are passed
 * over (copy-on-write and immer share what a transition did not write).
 * No closure is made per call: range-exact runs on most transitions.
 */
function diffPages(b: State, a: State, skip: SyscallOp | undefined, allow: Allow | ((mm: Id, page: number) => Allow), limit = 3): PageDiff[] {
  let out = NO_DIFF;
  const n = Math.max(b.nextId.mm, a.nextId.mm);
  for (let id = 0; id < n && out.length < limit; id++) {
    const bm = b.mms[id];
    const am = a.mms[id];
    if (bm === undefined || am === undefined) continue;
    if (bm === am && sameVmas(b, a, bm)) continue;
    const hi = Math.max(pagesOf(b, bm), pagesOf(a, am));
    beforeAt.reset(b, bm);
    afterAt.reset(a, am);
    for (let page = 0; page < hi && out.length < limit; page++) {
      if (skip !== undefined && id === skip.proc && inRange(skip, page)) continue;
      const what = pageDiff(b, a, bm, am, page, beforeAt.at(page), afterAt.at(page), typeof allow === 'function' ? allow(id, page) : allow);
      if (what !== undefined) (out === NO_DIFF ? (out = []) : out).push({ mm: id, page, what });
    }
  }
  return out;
}

function sameVmas(b: State, a: State, m: Mm): boolean {
  for (const id of m.vmas) if (b.vmas[id] !== a.vmas[id]) return false;
  return true;
}

/** The pages a munmap, mprotect or mremap names: [addr, addr + len), and for mremap the target too. */
function inRange(op: SyscallOp, page: number): boolean {
  switch (op.kind) {
    case 'munmap':
    case 'mprotect':
      return page >= op.addr && page < op.addr + op.len;
    case 'mremap':
      return (page >= op.addr && page < op.addr + Math.max(op.oldLen, op.newLen)) || (page >= op.newAddr && page < op.newAddr + op.newLen);
    default:
      return false;
  }
}

const ranged = new Set<SyscallOp['kind']>(['munmap', 'mprotect', 'mremap']);

/**
 * Outside op's range, every page x's VMAs map is mapped by a VMA of y with
 * the same flags and linear page index. One cursor step per VMA pair, not
 * per page (range-exact's screen, on most transitions).
 */
function covered(x: State, xm: Mm, y: State, ym: Mm, op: SyscallOp): boolean {
  const cur = afterAt.reset(y, ym);
  for (const id of xm.vmas) {
    const v = x.vmas[id]!;
    let w: Vma | undefined;
    for (let p = v.start; p < v.end; p++) {
      if (inRange(op, p) || (w !== undefined && p < w.end)) continue;
      w = cur.at(p);
      if (w === undefined || w.flags !== v.flags || w.pgoff - w.start !== v.pgoff - v.start) return false;
    }
  }
  return true;
}

/** A cheap screen: nothing outside op's range can differ (the exact comparison, diffPages, runs only when this fails). */
function unchangedOutside(b: State, a: State, op: SyscallOp): boolean {
  const n = Math.max(b.nextId.mm, a.nextId.mm);
  for (let id = 0; id < n; id++) {
    const bm = b.mms[id];
    const am = a.mms[id];
    if (bm === undefined || am === undefined) {
      if (bm !== am) return false;
      continue;
    }
    if (id !== op.proc) {
      if (bm !== am || !sameVmas(b, a, bm)) return false;
      continue;
    }
    const bp = bm.ptes;
    const ap = am.ptes;
    for (let p = 0; p < Math.max(bp.length, ap.length); p++) {
      const pte = bp[p];
      if (pte === ap[p] && (pte === undefined || pte.folio < 0 || b.folios[pte.folio] === a.folios[pte.folio])) continue;
      if (!inRange(op, p)) return false;
    }
    if (!covered(b, bm, a, am, op) || !covered(a, am, b, bm, op)) return false;
  }
  return true;
}

export const rangeExact: Property<State, Op> = {
  id: 'range-exact',
  description: 'munmap, mprotect and mremap change nothing outside their ranges: no page of any process is mapped, unmapped, reprotected, remapped or rewritten there',
  rule: 'munmap(2), mprotect(2), mremap(2) act on [addr, addr+len) (mremap: the old and the new range); the kernel splits VMAs at the edges (__split_vma, §3.4, §3.10, §5) and unmap_vmas clips each VMA to the range (unmap_single_vma, §5): a merge or split may rewrite neighbouring VMAs, never what their pages mean',
  when: 'transition',
  check: () => [],
  checkTransition(before, op, after) {
    if (!completed(op, after) || !ranged.has(op.kind) || unchangedOutside(before, after, op)) return NO_DETAILS;
    const diffs = diffPages(before, after, op, NO_LINKS);
    if (diffs.length === 0) return NO_DETAILS;
    return diffs.map((d) => `${formatOp(op)} (${formatResult(after.result!.ret)}) changed P${d.mm} page ${d.page} outside its range: ${d.what}`);
  },
};
const NO_LINKS: Allow = { links: false };
const NO_DETAILS: string[] = [];
const EXACT: Allow = { links: true };

/**
 * What a failed syscall may leave changed, per page (the kernel's promise,
 * read in the 7.x source; the rest must be as before):
 *   - SIGSEGV (do_user_addr_fault -> bad_area: no VMA or no access right)
 *     and the parameter errors (EINVAL, EFAULT) before any lock: nothing.
 *   - mmap, EEXIST (MAP_FIXED_NOREPLACE: another thread mapped the range
 *     after the syscall was issued, lock granularity): nothing.
 *   - mmap, ENOMEM (__mmap_region: vm_area_alloc, vma_iter_prealloc, or a
 *     merge that fails, vma_merge_new_range's abort path undoing
 *     dup_anon_vma): nothing; no VMA, chain or page changes.
 *   - fault, OOM (do_anonymous_page / wp_page_copy): anon_vma_prepare is
 *     not undone when the folio allocation that follows fails, so the
 *     faulting VMA may have gained an anon_vma (NIL -> some) and nothing else.
 *   - fork, ENOMEM (dup_mmap's error path, then mmput of the child): no new
 *     process; the parent's pages may have been write-protected for COW
 *     (copy_present_ptes is not undone), nothing else.
 *   - munmap, ENOMEM (vms_gather_munmap_vmas): "splits are not undone", so
 *     VMAs may be split, which changes no page's meaning or links; nothing
 *     is unmapped.
 *   - mprotect, ENOMEM (do_mprotect_pkey stops at the VMA whose
 *     mprotect_fixup -> vma_modify_flags failed; earlier VMAs keep the new
 *     protection, mprotect(2): "some pages may have been changed"): pages of
 *     the range may have the new protection (and fewer writable PTEs), with
 *     whatever links their successful merges gave them; a page outside may
 *     only gain an anon_vma that a page of the range had (a neighbour merged
 *     by dup_anon_vma). When no page has the new protection nothing
 *     succeeded and nothing may differ: a failed merge leaves its VMAs'
 *     links as they were (vma_merge_existing_range's abort path unlinks the
 *     duplicate dup_anon_vma made).
 *   - mremap (mremap_to unmaps the MREMAP_FIXED target, and shrinks the
 *     source, before the move can fail; move_vma's failure moves the page
 *     tables back and unmaps the new VMA): the target and the cut-off tail
 *     of the source may be unmapped or left mapped empty; a page may only
 *     gain an anon_vma the process had (copy_vma's merge with the target's
 *     neighbours, the unfaulted source among them, is not undone); PTEs and
 *     contents are as they were.
 */
function failureAllowance(before: State, op: SyscallOp, after: State): (mm: Id, page: number) => Allow {
  const mine = (mm: Id): boolean => mm === op.proc;
  /** anon_vmas of the pages [from, to) of op.proc before: a neighbour merged with them may have gained one. */
  const linkedBefore = (from: number, to: number): Set<Id> => {
    const set = new Set<Id>();
    const m = before.mms[op.proc];
    if (m === undefined) return set;
    for (const id of m.vmas) {
      const v = before.vmas[id]!;
      if (v.start < to && from < v.end && v.anonVma !== NIL) set.add(v.anonVma);
    }
    return set;
  };
  const gains = (set: Set<Id>) => (_page: number, b: Vma, a: Vma) => b.anonVma === NIL && set.has(a.anonVma);
  switch (op.kind) {
    case 'fault': {
      const allow: Allow = { links: (_page, b, a) => b.anonVma === NIL && b.chain.length === 0 && a.start <= op.page && op.page < a.end };
      return (mm) => (mine(mm) ? allow : EXACT);
    }
    case 'fork': {
      const allow: Allow = { links: true, wrprotect: true };
      return (mm) => (mine(mm) ? allow : EXACT);
    }
    case 'mprotect': {
      // Only a partial success (some page of the range has the new
      // protection) may have changed links; a failure at the first VMA
      // leaves them all as they were.
      const am = after.mms[op.proc];
      let partial = false;
      for (let page = op.addr; page < op.addr + op.len && am !== undefined; page++) {
        const v = am.vmas.map((id) => after.vmas[id]!).find((x) => x.start <= page && page < x.end);
        if (v !== undefined && (v.flags & VM_ACCESS_FLAGS) === op.prot) partial = true;
      }
      if (!partial) return () => EXACT;
      const set = linkedBefore(op.addr, op.addr + op.len);
      const inside: Allow = { links: (_page, b, a) => (a.flags & VM_ACCESS_FLAGS) === op.prot || gains(set)(_page, b, a), prot: op.prot, wrprotect: true };
      const outside: Allow = { links: gains(set) };
      return (mm, page) => (!mine(mm) ? EXACT : page >= op.addr && page < op.addr + op.len ? inside : outside);
    }
    case 'mremap': {
      // copy_vma may merge the target with both neighbours, the source among
      // them (an unfaulted source takes pgoff = addr to merge): the merge is
      // not undone when the move then fails, so any page of the process may
      // have gained an anon_vma the process had.
      const set = linkedBefore(0, Infinity);
      const target: Allow = { links: true, unmapOrEmpty: true };
      const outside: Allow = { links: gains(set) };
      const inTarget = (page: number): boolean =>
        (op.flags.fixed && page >= op.newAddr && page < op.newAddr + op.newLen) || (page >= op.addr + op.newLen && page < op.addr + op.oldLen);
      return (mm, page) => (!mine(mm) ? EXACT : inTarget(page) ? target : outside);
    }
    default:
      return () => EXACT;
  }
}

export const failureAtomic: Property<State, Op> = {
  id: 'failure-atomic',
  description: 'a syscall that fails (an error, or SIGSEGV) leaves every page of every process, and its anon_vma links, as the kernel promises for that error',
  rule: 'per syscall and error, what the 7.x kernel undoes and what it leaves (properties/transitions.ts failureAllowance): no new or lost process, no page mapped, unmapped, remapped or rewritten; a failed merge or clone leaves the VMAs\' anon_vma links as they were (vma_merge_existing_range / __mmap_region abort paths, anon_vma_clone cleanup, §2.4, §3.2, §3.6, §3.7); exceptions: anon_vma_prepare kept (§2.2), COW write-protect kept (§2.7), munmap splits kept (§5), mprotect partial (§3.10), mremap target and tail (§4)',
  when: 'transition',
  check: () => [],
  checkTransition(before, op, after) {
    if (!completed(op, after) || after.result!.ret === 0) return NO_DETAILS;
    const out: string[] = [];
    for (let id = 0; id < Math.max(before.nextId.mm, after.nextId.mm); id++) {
      if ((before.mms[id] === undefined) !== (after.mms[id] === undefined)) out.push(`P${id} ${after.mms[id] === undefined ? 'is gone' : 'appeared'}`);
    }
    // Most failures change nothing at all: the allowances are made only when something differs.
    if (diffPages(before, after, undefined, EXACT, 1).length > 0) {
      const diffs = diffPages(before, after, undefined, failureAllowance(before, op, after));
      for (const d of diffs) out.push(`changed P${d.mm} page ${d.page}: ${d.what}`);
    }
    if (out.length === 0) return NO_DETAILS;
    const head = `${formatOp(op)} failed (${formatResult(after.result!.ret)}) but `;
    return out.map((x) => head + x);
  },
};

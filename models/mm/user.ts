// What userspace sees (issue 13). Two halves, kept apart on purpose:
//   - the user's store after a write fault: the CPU retries the faulting
//     instruction and writes a new content id into the page the PTE now maps
//     (the kernel model holds contents in folio->data);
//   - the reference model: per process, per page, what a program reads by
//     the POSIX meaning of the syscalls it made (Mm.user), updated when a
//     syscall completes, from the operation and its result only, never from
//     the kernel model's page tables (except where the kernel itself does
//     not promise an outcome, said below).
// The user-view property (properties/user.ts) compares the two.
import { folio, mm, mmR, pteR, type Ctx } from './ctx.ts';
import type { SyscallOp } from './ops.ts';
import { emptyUserView, forEachThread, NIL, SIGSEGV, USER_SWAPPED, USER_ZERO, ZERO_PAGE, type Id, type Mm, type State } from './state.ts';
import { VM_FAULT_OOM, VM_FAULT_SIGSEGV } from './memory.ts';
import { ISSUED } from './sched.ts';
import { ENOMEM } from './rmap.ts';

/** Set the reference pages [from, to) of mmId to value (undefined: unmapped). Replaces the array: a parent's is shared. */
function setUser(c: Ctx, mmId: Id, from: number, to: number, value: number | undefined): void {
  if (from >= to) return;
  const m = mm(c, mmId);
  const user = m.user.slice();
  for (let p = from; p < to; p++) {
    if (value === undefined) delete user[p];
    else user[p] = value;
  }
  m.user = user;
}

/** The reference pages [from, to) of mmId as they are now. */
function userPages(c: Ctx, mmId: Id, from: number, to: number): (number | undefined)[] {
  const user = mmR(c, mmId).user;
  const out: (number | undefined)[] = [];
  for (let p = from; p < to; p++) out.push(user[p]);
  return out;
}

/**
 * The user's store after a write fault returned: a new content id in the
 * page the PTE maps, when the PTE is present and writable. (Were it not,
 * the CPU would fault again; the reference still records the store, so the
 * user-view property reports a write fault that left no writable page.)
 */
function user_store(c: Ctx, mmId: Id, page: number, content: number): void {
  const pte = pteR(c, mmId, page);
  if (pte === undefined || !pte.writable || pte.folio === ZERO_PAGE) return;
  const f = folio(c, pte.folio);
  const data = f.data.slice();
  data[pte.sub] = content;
  f.data = data;
}

/** Contents of a page as a new folio copies it (copy_mc_user_highpage in wp_page_copy, copy_present_page). */
export function pageContent(c: Ctx, folioId: Id, sub: number): number {
  return folioId === ZERO_PAGE ? USER_ZERO : (c.s.folios[folioId]?.data[sub] ?? USER_ZERO);
}

/** A fresh folio of one page takes the contents of (folioId, sub). */
export function copy_user_page(c: Ctx, dst: Id, folioId: Id, sub: number): void {
  const content = pageContent(c, folioId, sub);
  if (content !== USER_ZERO) folio(c, dst).data = [content];
}

/**
 * Reclaim unmapped a page (try_to_unmap_one, §2.12). The kernel leaves a swap
 * entry and reads the content back on the next fault; the model keeps no swap,
 * so the reference stops predicting this page's content (it stays mapped).
 */
export function user_page_swapped(c: Ctx, mmId: Id, page: number): void {
  const at = referencePage(c, mmId, page);
  const user = mmR(c, mmId).user;
  if (user[at] !== undefined && user[at] !== USER_SWAPPED) setUser(c, mmId, at, at + 1, USER_SWAPPED);
}

/**
 * The reference page that holds what the kernel maps at page. They differ
 * while an mremap move is in flight (lock granularity) past its first step:
 * its PTEs may have moved and the reference moves only when it returns, so a
 * page reclaimed at the destination is the source page of the reference.
 * (Before its first step the destination still maps its own pages; after
 * it, a MREMAP_FIXED target is unmapped and only moved pages come there.)
 */
function referencePage(c: Ctx, mmId: Id, page: number): number {
  let at = page;
  forEachThread(c.s, (t) => {
    const op = t.op;
    if (op?.kind === 'mremap' && t.pc !== ISSUED && op.proc === mmId && op.newAddr !== op.addr && page >= op.newAddr && page < op.newAddr + Math.min(op.oldLen, op.newLen))
      at = op.addr + (page - op.newAddr);
  });
  return at;
}

/**
 * fork: the child reads what the parent reads when the fork returns (the
 * parent is in the fork all along; a page reclaim unmapped meanwhile is
 * swapped in both). The child is the parent's newest: ids only grow.
 */
function user_fork(c: Ctx, parentId: Id): void {
  let child = NIL;
  for (let id = 0; id < c.s.nextId.mm; id++) if (c.s.mms[id]?.parent === parentId) child = id;
  if (child !== NIL) mm(c, child).user = mmR(c, parentId).user.slice();
}

/** The result a syscall reports to the user: a fault's VM_FAULT_* become SIGSEGV or ENOMEM. */
export function syscallResult(op: SyscallOp, ret: number): number {
  if (op.kind !== 'fault') return ret;
  if (ret === VM_FAULT_SIGSEGV) return SIGSEGV;
  return ret === VM_FAULT_OOM ? ENOMEM : ret;
}

/**
 * Where the kernel does not promise whether a range stays mapped, the
 * reference pages [from, to) follow the kernel model in being mapped or not:
 * a page the kernel unmapped is unmapped; a page it still maps keeps the
 * reference content, or reads zeros if the reference had it unmapped (an
 * empty mapping left behind). Contents are still checked: never another
 * page's data.
 */
function followMapped(c: Ctx, mmId: Id, from: number, to: number): void {
  for (let p = from; p < to; p++) {
    const mapped = kernelRead(c.s, mmR(c, mmId), p) !== undefined;
    const x = mmR(c, mmId).user[p];
    if (!mapped && x !== undefined) setUser(c, mmId, p, p + 1, undefined);
    else if (mapped && x === undefined) setUser(c, mmId, p, p + 1, USER_ZERO);
  }
}

/**
 * A syscall completed with result ret (syscallResult): record it on the
 * state and apply its POSIX meaning to the reference model. A failed
 * syscall changes nothing the user reads, except a failed mremap with
 * MREMAP_FIXED, whose destination may already be unmapped (mremap_to unmaps
 * it before the move can fail; mremap(2) promises nothing there), or left
 * mapped and empty (the failed move's new VMA, when its unmap fails too).
 */
export function user_syscall_done(c: Ctx, op: SyscallOp, ret: number): void {
  c.s.result = { proc: op.proc, ret };
  if (c.s.mms[op.proc] === undefined) return;
  if (ret !== 0) {
    if (op.kind === 'mremap' && op.flags.fixed) followMapped(c, op.proc, op.newAddr, op.newAddr + op.newLen);
    return;
  }
  switch (op.kind) {
    case 'mmap':
      setUser(c, op.proc, op.addr, op.addr + op.len, USER_ZERO);
      return;
    case 'fault': {
      if (!op.write) return;
      const content = c.s.nextId.content++;
      setUser(c, op.proc, op.page, op.page + 1, content);
      user_store(c, op.proc, op.page, content);
      return;
    }
    case 'fork':
      return user_fork(c, op.proc);
    case 'munmap':
      setUser(c, op.proc, op.addr, op.addr + op.len, undefined);
      return;
    case 'mremap':
      return user_mremap(c, op);
    // mprotect and pin change no content; exit removes the mm with its view.
    default:
      return;
  }
}

/**
 * Lock granularity: a syscall stopped at its first lock point. What it has
 * already destroyed for good is dropped from the reference now rather than
 * when it returns, so that states differing only in what nobody can read
 * back are one state: munmap and exit are past their point of no return
 * (vms_complete_munmap_vmas; exit cannot fail), and an mremap with
 * MREMAP_FIXED has unmapped its target (mremap_to).
 */
export function user_point_of_no_return(c: Ctx, op: SyscallOp): void {
  if (c.s.mms[op.proc] === undefined) return;
  if (op.kind === 'exit') mm(c, op.proc).user = emptyUserView();
  else if (op.kind === 'munmap') setUser(c, op.proc, op.addr, op.addr + op.len, undefined);
  else if (op.kind === 'mremap' && op.flags.fixed) setUser(c, op.proc, op.newAddr, op.newAddr + op.newLen, undefined);
}

/** mremap(2) that succeeded: the pages move with their contents (in place: shrink or expand). */
function user_mremap(c: Ctx, op: Extract<SyscallOp, { kind: 'mremap' }>): void {
  const { proc, addr, oldLen, newLen, flags } = op;
  const user = mmR(c, proc).user;
  let inPlace = !flags.fixed && !flags.dontunmap;
  // Without MREMAP_FIXED a growing mapping moves (MAYMOVE) only when the pages after it are mapped.
  if (inPlace && newLen > oldLen) for (let p = addr + oldLen; p < addr + newLen; p++) if (user[p] !== undefined) inPlace = false;
  if (inPlace) {
    if (newLen < oldLen) setUser(c, proc, addr + newLen, addr + oldLen, undefined);
    else setUser(c, proc, addr + oldLen, addr + newLen, USER_ZERO);
    return;
  }
  const moved = userPages(c, proc, addr, addr + Math.min(oldLen, newLen));
  setUser(c, proc, addr, addr + oldLen, flags.dontunmap ? USER_ZERO : undefined);
  setUser(c, proc, op.newAddr, op.newAddr + newLen, USER_ZERO);
  moved.forEach((x, i) => setUser(c, proc, op.newAddr + i, op.newAddr + i + 1, x));
  // move_vma's unmap of the source may fail to split with ENOMEM: mremap still
  // succeeds and the source stays mapped, emptied (mm/mremap.c, "OOM: unable
  // to split vma, just get accounts right").
  if (!flags.dontunmap && op.enomem > 0) followMapped(c, proc, addr, addr + oldLen);
}

/**
 * What mm's process reads at page by the kernel model: undefined when no
 * attached VMA covers it (a read would fault with SIGSEGV), USER_ZERO for
 * no PTE or the zero page (a read fault maps zeros), else the folio page's
 * content (NaN for a PTE to a folio that does not exist).
 */
export function kernelRead(s: State, m: Readonly<Mm>, page: number): number | undefined {
  let covered = false;
  for (const id of m.vmas) {
    const v = s.vmas[id];
    if (v !== undefined && v.attached && v.start <= page && page < v.end) {
      covered = true;
      break;
    }
  }
  if (!covered) return undefined;
  const pte = m.ptes[page];
  if (pte === undefined || pte.folio === ZERO_PAGE) return USER_ZERO;
  const f = s.folios[pte.folio];
  return f === undefined ? NaN : (f.data[pte.sub] ?? NaN);
}

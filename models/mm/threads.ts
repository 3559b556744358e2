// Threads at lock granularity (DESIGN.md §2, §3; issue 4): a syscall split
// into steps at its lock points (sched.ts), and the rmap walkers of §2.12.
//
// A step runs inside one immer produce. It ends at the next lock point (the
// thread stays in flight, resuming there), or when the thread finishes. A
// step that must wait for a lock another thread holds throws WouldBlock
// (locks.ts): it is not enabled in this state.
//
// Each syscall's steps are the kernel path cut at its lock points; the
// continuations below call the function that follows a lock point and then
// what its callers had left to do, so the path is the same code at both
// granularities:
//   mremap (a move):  copy_vma | move_page_tables [take_rmap_locks | PTL] | the rest (unmap of the old range)
//   fork:             per parent VMA, anon_vma_fork | copy_page_range
//   munmap:           split and detach | unmap_vmas (zap) | free_pgtables (unlink_anon_vmas)
//   exit:             zap | free_pgtables and the VMAs (unlink_anon_vmas)
//   fault, mmap, mprotect, pin, and the other mremaps: one step.
import { avR, folio, peek, vmaR, warn, type Ctx } from './ctx.ts';
import { anon_vma_lock_read, anon_vma_trylock_read, anon_vma_unlock_read, folio_trylock, folio_unlock, mmap_write_unlock } from './locks.ts';
import { folio_put_last } from './memory.ts';
import { restoreMove } from './mremap.ts';
import { SUSPEND } from './sched.ts';
import { runSyscall } from './syscalls.ts';
import { NIL, RECORD, WALKER_BASE, vmaPages, type Id, type State, type Thread, type WalkerKind } from './state.ts';
import type { SyscallOp } from './ops.ts';

/** The pc of a syscall thread that has been issued and has not run yet. */
export const ISSUED = 'issued';

/** A step: true when the thread has finished. */
type Step = (c: Ctx, t: Thread) => boolean;

// ---------------------------------------------------------------------------
// Syscall continuations: resume after a lock point.

/** do_mremap's end after move_vma: the mmap write lock is dropped. */
function mremapTail(c: Ctx, t: Thread, moved: { err: number; newVma: Id }, vrm: ReturnType<typeof restoreMove>['vrm']): boolean {
  c.k.move_vma_finish(c, vrm, moved);
  mmap_write_unlock(c, t.proc);
  return true;
}

/** dup_mm's end after dup_mmap's loop. */
function forkTail(c: Ctx, t: Thread, ret: number): boolean {
  const [child, parent] = t.mms as [Id, Id];
  c.k.dup_mm_finish(c, child, c.k.dup_mmap_finish(c, child, parent, ret));
  return true;
}

const SYSCALL_STEPS: Record<string, Step> = {
  [ISSUED]: (c, t) => {
    runSyscall(c, t.op!);
    return true;
  },
  move_page_tables: (c, t) => {
    const { vrm, newVma, pmc } = restoreMove(t.proc, t.vmas, t.nums);
    return mremapTail(c, t, c.k.copy_vma_and_data_move(c, vrm, newVma, pmc), vrm);
  },
  move_ptes: (c, t) => {
    const { vrm, newVma, pmc } = restoreMove(t.proc, t.vmas, t.nums);
    c.k.move_ptes_pte_locked(c, pmc);
    return mremapTail(c, t, c.k.copy_vma_and_data_moved(c, vrm, newVma, pmc, pmc.len), vrm);
  },
  copy_vma_and_data_finish: (c, t) => {
    const { vrm, newVma, moved } = restoreMove(t.proc, t.vmas, t.nums);
    return mremapTail(c, t, c.k.copy_vma_and_data_finish(c, vrm, newVma, moved), vrm);
  },
  dup_mmap_vma: (c, t) => {
    const [child, parent] = t.mms as [Id, Id];
    c.resumeAt = 'dup_mmap_vma';
    // The loop resumes at the first VMA left; positions before it are done.
    return forkTail(c, t, c.k.dup_mmap_vmas(c, child, parent, [NIL, ...t.vmas], 1));
  },
  copy_page_range: (c, t) => {
    const [child, parent] = t.mms as [Id, Id];
    const [tmp, mpnt, ...rest] = t.vmas as [Id, Id, ...Id[]];
    let ret = c.k.copy_page_range(c, tmp, mpnt);
    if (ret === 0 && rest.length > 0) ret = c.k.dup_mmap_vmas(c, child, parent, [NIL, ...rest], 1);
    return forkTail(c, t, ret);
  },
  unmap_vmas: (c, t) => {
    c.k.vms_clear_ptes(c, t.proc, [...t.vmas], true);
    return true;
  },
  exit_mmap_free: (c, t) => {
    // exit(2), or the teardown of a failed fork's child: nothing follows exit_mmap in either.
    c.k.exit_mmap_free(c, t.mms[0]!, [...t.vmas]);
    return true;
  },
  free_pgtables: (c, t) => {
    c.k.vms_free_vmas(c, t.proc, [...t.vmas], true);
    return true;
  },
};

// ---------------------------------------------------------------------------
// rmap walkers (§2.12). A walker reads only what the kernel reads:
// folio->mapping, the anon_vma's root and refcount, the tree of that
// anon_vma at each step, vma_address, and PTEs under the PTL.
//
// Locals: folios [the folio]; anonVmas [the locked anon_vma]; nums [tree
// cursor, referenced: mappings left to find]; seen: the snapshot.

/** The (process, page of folio) pairs that map folioId. */
function mappingsOf(s: State, folioId: Id): { mm: Id; sub: number }[] {
  const out: { mm: Id; sub: number }[] = [];
  for (const key in s.mms) {
    const ptes = s.mms[key]!.ptes;
    for (const p in ptes) if (ptes[p]!.folio === folioId) out.push({ mm: Number(key), sub: ptes[p]!.sub });
  }
  return out;
}

/** The walker drops its folio reference (the folio is freed if nothing maps it) and ends. */
function walkerEnd(c: Ctx, t: Thread): boolean {
  const f = t.folios[0]!;
  t.folios = [];
  if (c.s.folios[f] !== undefined) folio_put_last(c, f);
  return true;
}

/** Unlock the anon_vma and the folio at the end of a walk (rmap_walk_anon's unlock; try_to_unmap's caller). */
function walkUnlock(c: Ctx, t: Thread): void {
  anon_vma_unlock_read(c, t.anonVmas[0]!);
  folio_unlock(c, t.folios[0]!);
}

/**
 * folio_lock_anon_vma_read (rmap.c; §2.12), up to the lock: returns the
 * anon_vma read-locked, NIL when there is nothing to walk, or the
 * negative-encoded anon_vma (-2 - id) whose refcount it pinned before
 * sleeping on the lock (the slow path), or CONTENDED with try_lock.
 */
const CONTENDED = -1000;
function folio_lock_anon_vma_read(c: Ctx, folioId: Id, tryLock: boolean): number {
  const f = folio(c, folioId);
  if (f.anonVma === NIL || f.mapcount <= 0) return NIL;
  const anon = f.anonVma;
  avR(c, avR(c, anon, 'folio_lock_anon_vma_read').root, 'folio_lock_anon_vma_read(root)');
  if (anon_vma_trylock_read(c, anon)) {
    if (folio(c, folioId).mapcount > 0) return anon;
    anon_vma_unlock_read(c, anon);
    return NIL;
  }
  if (tryLock) return CONTENDED;
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

/** The next AVC of the locked tree at or after the cursor whose VMA overlaps the folio's pages, or -1. */
function nextInTree(c: Ctx, t: Thread): number {
  const f = folio(c, t.folios[0]!);
  const tree = peek(avR(c, t.anonVmas[0]!, 'anon_vma_interval_tree_foreach'), 'tree');
  for (let i = t.nums[0]!; i < tree.length; i++) {
    const v = vmaR(c, c.s.avcs[tree[i]!]!.vma);
    if (v.pgoff + vmaPages(v) - 1 >= f.index && v.pgoff <= f.index + f.nrPages - 1) return i;
  }
  return -1;
}

/** walker-sees-every-mapping (§2.12): an uncontended try_to_unmap leaves no mapping that was there when it began. */
function checkUnmapWalk(c: Ctx, t: Thread): void {
  const folioId = t.folios[0]!;
  for (const { mm: m, sub } of t.seen) {
    const mmState = c.s.mms[m];
    if (mmState === undefined) continue;
    for (const p in mmState.ptes) {
      const pte = mmState.ptes[p]!;
      if (pte.folio === folioId && pte.sub === sub)
        warn(c, `${RECORD.walkerMissed} ${threadNameOf(t)} (try_to_unmap of F${folioId}) finished uncontended but P${m} still maps page ${sub} of it at ${p}`);
    }
  }
}

const threadNameOf = (t: Thread): string => `W${t.id - WALKER_BASE}`;

/** The walk after the anon_vma is locked: one VMA per step, then unlock. */
function walkStep(unmap: boolean): Step {
  return (c, t) => {
    const pos = nextInTree(c, t);
    if (pos >= 0) {
      const tree = peek(avR(c, t.anonVmas[0]!, 'rmap_walk_anon'), 'tree');
      const vmaId = c.s.avcs[tree[pos]!]!.vma;
      const found = unmap ? c.k.try_to_unmap_one(c, t.folios[0]!, vmaId) : c.k.folio_referenced_one(c, t.folios[0]!, vmaId);
      t.nums[0] = pos + 1;
      if (!unmap) t.nums[1] = t.nums[1]! - found;
      // try_to_unmap's done() is folio_not_mapped; folio_referenced stops when it found every mapping.
      const done = unmap ? folio(c, t.folios[0]!).mapcount <= 0 : t.nums[1]! <= 0;
      if (!done && nextInTree(c, t) >= 0) return false;
    }
    walkUnlock(c, t);
    if (unmap) checkUnmapWalk(c, t);
    return walkerEnd(c, t);
  };
}

/** After folio_lock_anon_vma_read: go on walking, or end. */
function afterAnonLock(c: Ctx, t: Thread, r: number, unmap: boolean): boolean {
  if (r === NIL || r === CONTENDED) {
    // Nothing to walk, or folio_referenced's try_lock gave up (contended: no property check).
    folio_unlock(c, t.folios[0]!);
    return walkerEnd(c, t);
  }
  if (r <= -2) {
    t.anonVmas = [-2 - r];
    t.pc = 'anon_vma_lock_read';
    return false;
  }
  t.anonVmas = [r];
  t.nums = [0, t.nums[1] ?? 0];
  t.pc = unmap ? 'try_to_unmap_one' : 'folio_referenced_one';
  return false;
}

const WALKER_STEPS: Record<string, Step> = {
  /** shrink_folio_list's folio_trylock, then try_to_unmap's folio_lock_anon_vma_read. */
  'reclaim:issued': (c, t) => {
    if (!folio_trylock(c, t.folios[0]!)) return walkerEnd(c, t);
    t.pc = 'folio_lock_anon_vma_read';
    return false;
  },
  /** folio_referenced: folio_trylock (a locked folio counts as referenced), then the try_lock walk. */
  'referenced:issued': (c, t) => {
    t.nums = [0, folio(c, t.folios[0]!).mapcount];
    if (t.nums[1]! <= 0 || !folio_trylock(c, t.folios[0]!)) return walkerEnd(c, t);
    return afterAnonLock(c, t, folio_lock_anon_vma_read(c, t.folios[0]!, true), false);
  },
  folio_lock_anon_vma_read: (c, t) => afterAnonLock(c, t, folio_lock_anon_vma_read(c, t.folios[0]!, false), true),
  /** The slow path sleeps on the lock, then drops its refcount pin: if that was the last, the anon_vma goes. */
  anon_vma_lock_read: (c, t) => {
    const anon = t.anonVmas[0]!;
    anon_vma_lock_read(c, anon);
    const a = avR(c, anon, 'folio_lock_anon_vma_read(put)');
    if (a.refcount - 1 === 0) {
      anon_vma_unlock_read(c, anon);
      c.k.put_anon_vma(c, anon);
      folio_unlock(c, t.folios[0]!);
      return walkerEnd(c, t);
    }
    c.k.put_anon_vma(c, anon);
    t.nums = [0, 0];
    t.pc = 'try_to_unmap_one';
    return false;
  },
  try_to_unmap_one: walkStep(true),
  folio_referenced_one: walkStep(false),
};

// ---------------------------------------------------------------------------
// Running threads.

function emptyThread(id: Id, proc: Id): Thread {
  return { id, proc, pc: ISSUED, held: [], allocs: 0, failAt: 0, mms: [], vmas: [], anonVmas: [], folios: [], nums: [], seen: [] };
}

/** A syscall thread, issued and not yet run. */
export function issueSyscall(s: State, op: SyscallOp): void {
  const t = emptyThread(op.proc, op.proc);
  t.op = op;
  t.failAt = op.enomem;
  s.threads[t.id] = t;
}

/** A walker on the folio mapped at proc's page, with its snapshot; returns its thread id. */
export function issueWalker(s: State, kind: WalkerKind, proc: Id, page: number): Id {
  const pte = s.mms[proc]!.ptes[page]!;
  const id = WALKER_BASE + s.nextId.walker++;
  const t = emptyThread(id, proc);
  t.walker = kind;
  t.pc = `${kind}:${ISSUED}`;
  t.folios = [pte.folio];
  if (kind === 'reclaim') t.seen = mappingsOf(s, pte.folio);
  s.threads[id] = t;
  s.budgets.walkers = (s.budgets.walkers ?? 0) - 1;
  return id;
}

/** The step function a thread runs next. */
function stepOf(t: Thread): Step {
  const step = (t.walker !== undefined ? WALKER_STEPS : SYSCALL_STEPS)[t.pc];
  if (step === undefined) throw new Error(`model bug: ${t.id} has no step ${t.pc}`);
  return step;
}

/**
 * Run thread tid's next step on the draft. WouldBlock propagates (the step
 * is not enabled). The thread is removed when it finishes.
 */
export function runThreadStep(c: Ctx, tid: Id): void {
  const t = c.s.threads[tid]!;
  c.thread = tid;
  c.blocking = true;
  c.held = t.held;
  c.t = t;
  c.allocs = t.allocs;
  c.failAt = t.failAt;
  let finished: boolean;
  try {
    finished = stepOf(t)(c, t);
  } catch (e) {
    if (e !== SUSPEND) throw e;
    finished = false;
  }
  if (finished) {
    if (t.held.length > 0) warn(c, `${RECORD.lockdep} ${threadName(t)} ended holding ${t.held.map((h) => `${h.cls} ${h.id}`).join(', ')}`);
    delete c.s.threads[tid];
  } else t.allocs = c.allocs;
}

const threadName = (t: Thread): string => (t.walker !== undefined ? threadNameOf(t) : `P${t.id}`);

/** Processes that cannot issue a syscall: one in flight, or a child a fork in flight is still building. */
export function busyProcs(s: State): Set<Id> {
  const out = new Set<Id>();
  for (const key in s.threads) {
    const t = s.threads[key]!;
    if (t.walker !== undefined) continue;
    out.add(t.proc);
    if (t.op?.kind === 'fork' && t.pc !== ISSUED) out.add(t.mms[0]!);
  }
  return out;
}

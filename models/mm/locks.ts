// Locks (digest §6): mmap_lock per mm, the anon_vma root rwsem, the
// page_table_lock and PTE lock of an mm, the folio lock. Each acquisition is
// recorded in the state with its holder, and in the thread's held list, so
// that lock-level interleaving, lockdep's checks and the kernel's lock
// asserts (mmap_assert_locked, ...) can be modelled.
//
// At syscall granularity a syscall runs alone, so a lock held by another
// thread can only be a leak, recorded as a lockdep error. At lock
// granularity (c.blocking) taking such a lock throws WouldBlock: the step is
// not enabled in this state, and its partial effects are discarded with the
// immer draft. Recursion, releases of locks not held and acquisitions against
// the hierarchy of §6.1 are recorded as `lockdep:` records either way
// (properties/locking.ts reports them as lock-discipline).
import { av, avR, folio, mm, mmR, peek, vma, vmaR, warn, type Ctx } from './ctx.ts';
import { threadName } from './ops.ts';
import { forEachThread, NIL, RECORD, vmaWriteLocked, type HeldLock, type Id, type LockClass, type LockState } from './state.ts';

/** The lock a step waits for: thrown by an acquisition that must sleep or spin at lock granularity. */
export class WouldBlock {
  constructor(
    /** The lock, named as in the counterexample ("anon_vma->root->rwsem of A0"). */
    readonly lock: string,
    readonly cls: LockClass,
    readonly id: Id,
    /** The writer or spinlock holder, or NIL when readers hold it (or a queued writer keeps a reader out). */
    readonly holder: Id,
    /** Locks the step took before it came to this one, and locks it released. */
    readonly acquired: number,
    readonly released: number,
    /**
     * A writer that finds an rwsem held at its step's first lock operation
     * queues on it instead (rwsem_down_write_slowpath): the step's
     * transition is then the queueing (model.ts), and new readers wait
     * behind it. Elsewhere in a step a wait only makes the step not enabled.
     */
    readonly queueable = false,
  ) {}

  /** The thread cannot go on until the lock is free: the step released nothing before it came here (so nobody waiting on it is freed either). */
  get firm(): boolean {
    return this.released === 0;
  }
}

/** The WouldBlock of an acquisition at this point of c's step. */
function blockedAt(c: Ctx, lock: string, cls: LockClass, id: Id, holder: Id, queueable = false): WouldBlock {
  return new WouldBlock(lock, cls, id, holder, c.lockOps - c.releases, c.releases, queueable);
}

/** Rank in the hierarchy of §6.1 (comment at the top of mm/rmap.c), outermost first. */
export const LOCK_RANK: Record<LockClass, number> = {
  mmap_lock: 2,
  folio_lock: 4,
  vma_lock: 6,
  anon_vma_rwsem: 8,
  page_table_lock: 9,
  ptl: 9,
};

const PREFIX: Record<LockClass, string> = {
  mmap_lock: 'mmap_lock of P',
  folio_lock: 'folio lock of F',
  vma_lock: 'VMA lock of V',
  anon_vma_rwsem: 'anon_vma->root->rwsem of A',
  page_table_lock: 'mm->page_table_lock of P',
  ptl: 'PTE lock of P',
};

export function lockName(cls: LockClass, id: Id): string {
  return PREFIX[cls] + id;
}

function lockdep(c: Ctx, what: string): void {
  warn(c, `${RECORD.lockdep} ${what}`);
}

function heldIndex(c: Ctx, cls: LockClass, id: Id): number {
  for (let i = 0; i < c.held.length; i++) if (c.held[i]!.cls === cls && c.held[i]!.id === id) return i;
  return -1;
}

/**
 * Record an acquisition in the thread's held list, after lockdep's checks: a
 * lock taken while the thread holds one ranked below it in §6.1 is an order
 * inversion. Same-rank nesting (fork's two mmap_locks, the two PTLs of
 * copy_page_range) is the kernel's *_nested and allowed.
 */
function noteAcquired(c: Ctx, cls: LockClass, id: Id, write: boolean): void {
  checkOrder(c, cls, id);
  noteTrylocked(c, cls, id, write);
}

/** A trylock that succeeded: it cannot deadlock, so lockdep does not check its order (do_wp_page's folio_trylock under the PTL, §6.1). */
function noteTrylocked(c: Ctx, cls: LockClass, id: Id, write: boolean): void {
  c.held.push({ cls, id, write });
  c.lockOps++;
}

/** lockdep's order check for an acquisition of cls (also for vma_start_write, which holds nothing after it returns). */
function checkOrder(c: Ctx, cls: LockClass, id: Id): void {
  const rank = LOCK_RANK[cls];
  for (const h of c.held) {
    if (SPINLOCKS.has(h.cls) && !SPINLOCKS.has(cls))
      lockdep(c, `${lockName(cls, id)} (a sleeping lock) taken under the spinlock ${lockName(h.cls, h.id)}`);
    else if (LOCK_RANK[h.cls] > rank) lockdep(c, `${lockName(cls, id)} taken while holding ${lockName(h.cls, h.id)} (order, §6.1)`);
  }
}

/**
 * A writer other than the caller is queued on the rwsem (lock granularity):
 * down_read then waits behind it and down_read_trylock fails (the wait
 * list's RWSEM_FLAG_WAITERS and, once the writer has waited long enough,
 * RWSEM_FLAG_HANDOFF; §6). Returns the queued writer, or NIL.
 */
function queuedWriter(c: Ctx, cls: LockClass, id: Id): Id {
  if (!c.blocking) return NIL;
  let out = NIL;
  forEachThread(c.s, (t) => {
    if (out === NIL && t.id !== c.thread && t.queued !== undefined && t.queued.cls === cls && t.queued.id === id) out = t.id;
  });
  return out;
}

/** The spinlocks: nothing that sleeps may be taken under them (might_sleep). */
const SPINLOCKS: ReadonlySet<LockClass> = new Set(['page_table_lock', 'ptl']);

function noteReleased(c: Ctx, cls: LockClass, id: Id): void {
  const i = heldIndex(c, cls, id);
  if (i >= 0) c.held.splice(i, 1);
  c.lockOps++;
  c.releases++;
}

// The rwsem helpers return the lock's new value, which the caller stores
// (assigning one new object is cheaper than writing through a draft of it).
function takeWrite(c: Ctx, l: Readonly<LockState>, cls: LockClass, id: Id): LockState {
  const t = c.t;
  const queued = t?.queued !== undefined && t.queued.cls === cls && t.queued.id === id;
  if (l.writer === c.thread || heldIndex(c, cls, id) >= 0) lockdep(c, `recursive acquisition of ${lockName(cls, id)}`);
  else if (l.writer !== NIL || l.readers > 0) {
    if (c.blocking) throw blockedAt(c, lockName(cls, id), cls, id, l.writer, !queued && t !== undefined && c.lockOps === 0);
    lockdep(c, `${lockName(cls, id)} taken for write while held`);
  }
  // A queued writer that gets the lock leaves the wait list.
  if (queued) t.queued = undefined;
  noteAcquired(c, cls, id, true);
  return { writer: c.thread, readers: l.readers };
}

function releaseWrite(c: Ctx, l: Readonly<LockState>, cls: LockClass, id: Id): LockState {
  if (l.writer !== c.thread) lockdep(c, `release of ${lockName(cls, id)} not held for write`);
  noteReleased(c, cls, id);
  return { writer: NIL, readers: l.readers };
}

function takeRead(c: Ctx, l: Readonly<LockState>, cls: LockClass, id: Id): LockState {
  // A reader waits behind a queued writer even when it already holds the
  // lock for read: the reader-writer-reader deadlock lockdep warns of.
  const w = l.writer === NIL ? queuedWriter(c, cls, id) : NIL;
  if (w !== NIL) throw blockedAt(c, `${lockName(cls, id)} (behind the queued writer ${threadName(w)})`, cls, id, w);
  if (l.writer === c.thread || heldIndex(c, cls, id) >= 0) lockdep(c, `recursive acquisition of ${lockName(cls, id)}`);
  else if (l.writer !== NIL) {
    if (c.blocking) throw blockedAt(c, lockName(cls, id), cls, id, l.writer);
    lockdep(c, `${lockName(cls, id)} taken for read while write-held`);
  }
  noteAcquired(c, cls, id, false);
  return { writer: l.writer, readers: l.readers + 1 };
}

function releaseRead(c: Ctx, l: Readonly<LockState>, cls: LockClass, id: Id): LockState {
  if (l.readers <= 0) {
    lockdep(c, `release of ${lockName(cls, id)} not held for read`);
    return { writer: l.writer, readers: l.readers };
  }
  noteReleased(c, cls, id);
  return { writer: l.writer, readers: l.readers - 1 };
}

// include/linux/mmap_lock.h. Taking the lock for write begins the mm's
// lock seqcount (mm_lock_seqcount_begin); releasing or downgrading it ends
// it (vma_end_write_all), which drops every VMA write lock at once (§1.2).
export function mmap_write_lock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.mmapLock = takeWrite(c, peek(m, 'mmapLock'), 'mmap_lock', mmId);
  m.lockSeq++;
}
/** mmap_write_lock_killable: as mmap_write_lock; the model sends no fatal signal, so the wait is never cut short with -EINTR. */
export const mmap_write_lock_killable = mmap_write_lock;
export function mmap_write_unlock(c: Ctx, mmId: Id): void {
  vma_end_write_all(c, mmId);
  const m = mm(c, mmId);
  m.mmapLock = releaseWrite(c, peek(m, 'mmapLock'), 'mmap_lock', mmId);
}
export function mmap_read_lock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.mmapLock = takeRead(c, peek(m, 'mmapLock'), 'mmap_lock', mmId);
}
export function mmap_read_unlock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.mmapLock = releaseRead(c, peek(m, 'mmapLock'), 'mmap_lock', mmId);
}
/** mmap_write_downgrade: munmap zaps and frees page tables under the read lock (§5). */
export function mmap_write_downgrade(c: Ctx, mmId: Id): void {
  vma_end_write_all(c, mmId);
  const m = mm(c, mmId);
  const l = releaseWrite(c, peek(m, 'mmapLock'), 'mmap_lock', mmId);
  l.readers++;
  c.held.push({ cls: 'mmap_lock', id: mmId, write: false });
  m.mmapLock = l;
}
/** mmap_read_trylock (down_read_trylock): false when write-held or a writer is queued (§2.2 step 1, __vmf_anon_prepare). */
export function mmap_read_trylock(c: Ctx, mmId: Id): boolean {
  const l = peek(mmR(c, mmId), 'mmapLock');
  if (l.writer !== NIL || queuedWriter(c, 'mmap_lock', mmId) !== NIL) return false;
  mm(c, mmId).mmapLock = { writer: NIL, readers: l.readers + 1 };
  noteTrylocked(c, 'mmap_lock', mmId, false);
  return true;
}
/** mmap_assert_locked: read or write (§2.2 step 1, §2.6 step 1). */
export function mmap_assert_locked(c: Ctx, mmId: Id, where: string): void {
  const l = peek(mmR(c, mmId), 'mmapLock');
  if (l.writer === NIL && l.readers === 0) warn(c, `${where}: mmap_assert_locked`);
}
/** mmap_assert_write_locked (check_anon_vma_clone, vma_merge_*, §7.1). */
export function mmap_assert_write_locked(c: Ctx, mmId: Id, where: string): void {
  if (peek(mmR(c, mmId), 'mmapLock').writer === NIL) warn(c, `${where}: mmap_assert_write_locked`);
}

// mm/internal.h: anon_vma_lock_write/read lock the root's rwsem (§1.3).
export function anon_vma_lock_write(c: Ctx, avId: Id): void {
  const rootId = avR(c, avId, 'anon_vma_lock_write').root;
  const root = av(c, rootId, 'anon_vma_lock_write(root)');
  root.rwsem = takeWrite(c, peek(root, 'rwsem'), 'anon_vma_rwsem', rootId);
}
export function anon_vma_unlock_write(c: Ctx, avId: Id): void {
  const rootId = avR(c, avId, 'anon_vma_unlock_write').root;
  const root = av(c, rootId, 'anon_vma_unlock_write(root)');
  root.rwsem = releaseWrite(c, peek(root, 'rwsem'), 'anon_vma_rwsem', rootId);
}
export function anon_vma_lock_read(c: Ctx, avId: Id): void {
  const rootId = avR(c, avId, 'anon_vma_lock_read').root;
  const root = av(c, rootId, 'anon_vma_lock_read(root)');
  root.rwsem = takeRead(c, peek(root, 'rwsem'), 'anon_vma_rwsem', rootId);
}
/** down_read_trylock(&root->rwsem) (folio_lock_anon_vma_read's fast path, §2.12): false when write-held. */
export function anon_vma_trylock_read(c: Ctx, avId: Id): boolean {
  const rootId = avR(c, avId, 'anon_vma_trylock_read').root;
  const l = peek(avR(c, rootId, 'anon_vma_trylock_read(root)'), 'rwsem');
  if (l.writer !== NIL || queuedWriter(c, 'anon_vma_rwsem', rootId) !== NIL) return false;
  const root = av(c, rootId, 'anon_vma_trylock_read(root)');
  root.rwsem = { writer: l.writer, readers: l.readers + 1 };
  noteTrylocked(c, 'anon_vma_rwsem', rootId, false);
  return true;
}
/**
 * The interval tree of an anon_vma changes only under its root's rwsem held
 * for write (include/linux/rmap.h, struct anon_vma: rb_root is protected by
 * the root's rwsem; §1.3, §6.1); a walker reading it under the read lock relies on it.
 */
export function anon_vma_assert_tree_locked(c: Ctx, avId: Id, where: string): void {
  const rootId = avR(c, avId, where).root;
  const root = avR(c, rootId, `${where}(root)`);
  if (peek(root, 'rwsem').writer !== c.thread) lockdep(c, `${where}: the tree of A${avId} changed without ${lockName('anon_vma_rwsem', rootId)} held for write`);
}

export function anon_vma_unlock_read(c: Ctx, avId: Id): void {
  const rootId = avR(c, avId, 'anon_vma_unlock_read').root;
  const root = av(c, rootId, 'anon_vma_unlock_read(root)');
  root.rwsem = releaseRead(c, peek(root, 'rwsem'), 'anon_vma_rwsem', rootId);
}

function spinLock(c: Ctx, holder: Id, cls: LockClass, id: Id): Id {
  if (holder === c.thread) lockdep(c, `recursive acquisition of ${lockName(cls, id)}`);
  else if (holder !== NIL) {
    if (c.blocking) throw blockedAt(c, lockName(cls, id), cls, id, holder);
    lockdep(c, `${lockName(cls, id)} taken while held`);
  }
  noteAcquired(c, cls, id, true);
  return c.thread;
}
function spinUnlock(c: Ctx, holder: Id, cls: LockClass, id: Id): Id {
  if (holder !== c.thread) lockdep(c, `release of ${lockName(cls, id)} not held`);
  noteReleased(c, cls, id);
  return NIL;
}

/** spin_lock(&mm->page_table_lock) (__anon_vma_prepare, §2.2 step 4). */
export function page_table_lock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.pageTableLock = spinLock(c, m.pageTableLock, 'page_table_lock', mmId);
}
export function page_table_unlock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.pageTableLock = spinUnlock(c, m.pageTableLock, 'page_table_lock', mmId);
}
/** pte_offset_map_lock: the PTE lock of the mm's page table. */
export function pte_lock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.ptl = spinLock(c, m.ptl, 'ptl', mmId);
}
export function pte_unlock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.ptl = spinUnlock(c, m.ptl, 'ptl', mmId);
}

export function folio_lock(c: Ctx, folioId: Id): void {
  const f = folio(c, folioId);
  f.locked = spinLock(c, f.locked, 'folio_lock', folioId);
}
/** folio_trylock: false when another thread holds it. */
export function folio_trylock(c: Ctx, folioId: Id): boolean {
  const f = folio(c, folioId);
  if (f.locked !== NIL) return false;
  f.locked = c.thread;
  noteTrylocked(c, 'folio_lock', folioId, true);
  return true;
}
export function folio_unlock(c: Ctx, folioId: Id): void {
  const f = folio(c, folioId);
  f.locked = spinUnlock(c, f.locked, 'folio_lock', folioId);
}

// ---------------------------------------------------------------------------
// Per-VMA locks (CONFIG_PER_VMA_LOCK; include/linux/mmap_lock.h,
// mm/mmap_lock.c; digest §1.2, §6.2). A VMA is write-locked while its
// lockSeq equals its mm's; the write lock is taken under the mmap write lock
// and dropped with it (vma_end_write_all). Readers are page faults that hold
// the VMA alone (lock_vma_under_rcu): a reader never waits (it falls back
// to the mmap lock), a writer waits for the readers to leave.

/** vma_end_write_all: every VMA write lock of the mm drops (the mm's seqcount ends, mm_lock_seqcount_end). */
export function vma_end_write_all(c: Ctx, mmId: Id): void {
  mm(c, mmId).lockSeq++;
}

/**
 * vma_start_write: under the mmap write lock, mark the VMA write-locked for
 * this mm epoch after waiting for its readers to leave (__vma_start_write).
 * Already locked in this epoch: nothing to do.
 */
export function vma_start_write(c: Ctx, vmaId: Id): void {
  const v = vmaR(c, vmaId);
  const m = mmR(c, v.mm);
  mmap_assert_write_locked(c, v.mm, 'vma_start_write');
  if (vmaWriteLocked(v, m)) return;
  if (v.readers > 0) {
    if (c.blocking) throw blockedAt(c, lockName('vma_lock', vmaId), 'vma_lock', vmaId, NIL);
    lockdep(c, `vma_start_write(V${vmaId}) with readers`);
  }
  checkOrder(c, 'vma_lock', vmaId);
  c.lockOps++;
  vma(c, vmaId).lockSeq = m.lockSeq;
}
/** vma_start_write_killable (dup_mmap's source VMAs, §2.7): as vma_start_write; the model sends no fatal signal. */
export const vma_start_write_killable = vma_start_write;

/** vma_assert_write_locked (include/linux/mmap_lock.h; §1.2). */
export function vma_assert_write_locked(c: Ctx, vmaId: Id, where: string): void {
  const v = vmaR(c, vmaId);
  if (!vmaWriteLocked(v, mmR(c, v.mm))) warn(c, `${where}: vma_assert_write_locked`);
}

/**
 * vma_start_read (mm/mmap_lock.c): take a VMA read lock without waiting;
 * false when the VMA is write-locked in this epoch or detached (the caller
 * falls back to the mmap lock).
 */
export function vma_start_read(c: Ctx, vmaId: Id): boolean {
  const v = vmaR(c, vmaId);
  if (!v.attached || vmaWriteLocked(v, mmR(c, v.mm))) return false;
  const w = vma(c, vmaId);
  w.readers = v.readers + 1;
  noteAcquired(c, 'vma_lock', vmaId, false);
  return true;
}

/** vma_end_read (include/linux/mmap_lock.h; §6.2): the fault is done with the VMA. */
export function vma_end_read(c: Ctx, vmaId: Id): void {
  const v = vma(c, vmaId);
  if (v.readers <= 0) lockdep(c, `release of ${lockName('vma_lock', vmaId)} not held for read`);
  else v.readers--;
  noteReleased(c, 'vma_lock', vmaId);
}

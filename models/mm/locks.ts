// Locks (digest §6): mmap_lock per mm, the anon_vma root rwsem, the
// page_table_lock and PTE lock of an mm, the folio lock. Each acquisition is
// recorded in the state with its holder so that lock-level interleaving and
// the kernel's lock asserts (mmap_assert_locked, ...) can be modelled. In
// syscall granularity a syscall runs alone, so an acquisition always finds the
// lock free unless the path itself already holds it (a double acquisition,
// recorded as a lockdep warning).
import { av, avR, folio, mm, mmR, peek, warn, type Ctx } from './ctx.ts';
import { NIL, type Id, type LockState } from './state.ts';

// The rwsem helpers return the lock's new value, which the caller stores
// (assigning one new object is cheaper than writing through a draft of it).
function takeWrite(c: Ctx, l: Readonly<LockState>, name: string): LockState {
  if (l.writer === c.thread) warn(c, `lockdep: recursive write acquisition of ${name}`);
  else if (l.writer !== NIL || l.readers > 0) warn(c, `lockdep: ${name} taken for write while held`);
  return { writer: c.thread, readers: l.readers };
}

function releaseWrite(c: Ctx, l: Readonly<LockState>, name: string): LockState {
  if (l.writer !== c.thread) warn(c, `lockdep: release of ${name} not held for write`);
  return { writer: NIL, readers: l.readers };
}

function takeRead(c: Ctx, l: Readonly<LockState>, name: string): LockState {
  if (l.writer !== NIL) warn(c, `lockdep: ${name} taken for read while write-held`);
  return { writer: l.writer, readers: l.readers + 1 };
}

function releaseRead(c: Ctx, l: Readonly<LockState>, name: string): LockState {
  if (l.readers <= 0) {
    warn(c, `lockdep: release of ${name} not held for read`);
    return { writer: l.writer, readers: l.readers };
  }
  return { writer: l.writer, readers: l.readers - 1 };
}

// include/linux/mmap_lock.h
export function mmap_write_lock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.mmapLock = takeWrite(c, peek(m, 'mmapLock'), 'mmap_lock');
}
export function mmap_write_unlock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.mmapLock = releaseWrite(c, peek(m, 'mmapLock'), 'mmap_lock');
}
export function mmap_read_lock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.mmapLock = takeRead(c, peek(m, 'mmapLock'), 'mmap_lock');
}
export function mmap_read_unlock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.mmapLock = releaseRead(c, peek(m, 'mmapLock'), 'mmap_lock');
}
/** mmap_write_downgrade: munmap zaps and frees page tables under the read lock (§5). */
export function mmap_write_downgrade(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  const l = releaseWrite(c, peek(m, 'mmapLock'), 'mmap_lock');
  l.readers++;
  m.mmapLock = l;
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
  const root = av(c, avR(c, avId, 'anon_vma_lock_write').root, 'anon_vma_lock_write(root)');
  root.rwsem = takeWrite(c, peek(root, 'rwsem'), 'anon_vma->root->rwsem');
}
export function anon_vma_unlock_write(c: Ctx, avId: Id): void {
  const root = av(c, avR(c, avId, 'anon_vma_unlock_write').root, 'anon_vma_unlock_write(root)');
  root.rwsem = releaseWrite(c, peek(root, 'rwsem'), 'anon_vma->root->rwsem');
}
export function anon_vma_lock_read(c: Ctx, avId: Id): void {
  const root = av(c, avR(c, avId, 'anon_vma_lock_read').root, 'anon_vma_lock_read(root)');
  root.rwsem = takeRead(c, peek(root, 'rwsem'), 'anon_vma->root->rwsem');
}
export function anon_vma_unlock_read(c: Ctx, avId: Id): void {
  const root = av(c, avR(c, avId, 'anon_vma_unlock_read').root, 'anon_vma_unlock_read(root)');
  root.rwsem = releaseRead(c, peek(root, 'rwsem'), 'anon_vma->root->rwsem');
}

function spinLock(c: Ctx, holder: Id, name: string): Id {
  if (holder === c.thread) warn(c, `lockdep: recursive acquisition of ${name}`);
  else if (holder !== NIL) warn(c, `lockdep: ${name} taken while held`);
  return c.thread;
}
function spinUnlock(c: Ctx, holder: Id, name: string): Id {
  if (holder !== c.thread) warn(c, `lockdep: release of ${name} not held`);
  return NIL;
}

/** spin_lock(&mm->page_table_lock) (__anon_vma_prepare, §2.2 step 4). */
export function page_table_lock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.pageTableLock = spinLock(c, m.pageTableLock, 'mm->page_table_lock');
}
export function page_table_unlock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.pageTableLock = spinUnlock(c, m.pageTableLock, 'mm->page_table_lock');
}
/** pte_offset_map_lock: the PTE lock of the mm's page table. */
export function pte_lock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.ptl = spinLock(c, m.ptl, 'ptl');
}
export function pte_unlock(c: Ctx, mmId: Id): void {
  const m = mm(c, mmId);
  m.ptl = spinUnlock(c, m.ptl, 'ptl');
}

export function folio_lock(c: Ctx, folioId: Id): void {
  const f = folio(c, folioId);
  f.locked = spinLock(c, f.locked, 'folio lock');
}
/** folio_trylock: false when another thread holds it. */
export function folio_trylock(c: Ctx, folioId: Id): boolean {
  const f = folio(c, folioId);
  if (f.locked !== NIL) return false;
  f.locked = c.thread;
  return true;
}
export function folio_unlock(c: Ctx, folioId: Id): void {
  const f = folio(c, folioId);
  f.locked = spinUnlock(c, f.locked, 'folio lock');
}

// The model's state: one immutable value of id-keyed tables (DESIGN.md §2).
// Objects refer to each other by id, never by pointer, so a state is plain
// data that can be encoded, hashed, stored and compared.

import type { SyscallOp } from './ops.ts';
import type { All } from './cow.ts';

export type Id = number;
/** A NULL pointer. */
export const NIL: Id = -1;
/** The shared zero page mapped by read faults (do_anonymous_page, §2.8). */
export const ZERO_PAGE: Id = -2;

/** vm_flags bits the model distinguishes (§1.2). */
export const VM_READ = 1 << 0;
export const VM_WRITE = 1 << 1;
export const VM_EXEC = 1 << 2;
/** VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP: forbids any merge. */
export const VM_SPECIAL = 1 << 3;
/** One merge-incompatible bit (stands for VM_LOCKED, VM_HUGEPAGE, ...). */
export const VM_NOMERGE = 1 << 4;
/** VM_ACCESS_FLAGS, ignored by anon_vma_compatible. */
export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

/** A reader/writer semaphore or spinlock: which thread writes, how many read. */
export interface LockState {
  writer: Id;
  readers: number;
}

export interface Pte {
  /** Folio id, or ZERO_PAGE. */
  folio: Id;
  /** Page within the folio (0 for small folios). */
  sub: number;
  writable: boolean;
}

export interface Mm {
  id: Id;
  /** The mm this one was forked from (NIL for the first process). Not semantic. */
  parent: Id;
  /** VMA ids sorted by vm_start. */
  vmas: readonly Id[];
  /**
   * The page table: ptes[page] is the PTE of that page, a hole where there is
   * none (a sparse array, so that an index loop up to its length visits every
   * PTE: for-in over integer keys costs ten times more on the explorer's path).
   * Written only through set_pte_at and pte_clear (ctx.ts).
   */
  ptes: readonly (Readonly<Pte> | undefined)[];
  mmapLock: Readonly<LockState>;
  /**
   * mm->mm_lock_seq: bumped when the mmap lock is taken for write and again
   * when it is released or downgraded (a seqcount: odd while write-held). A
   * VMA is write-locked while its lockSeq equals it (§1.2). Only that
   * equality is canonical; the numbers themselves are not.
   */
  lockSeq: number;
  /** mm->page_table_lock (serializes setting vma->anon_vma, §2.2); holder thread or NIL. */
  pageTableLock: Id;
  /** The PTE lock of the (single) page table of this small address space; holder or NIL. */
  ptl: Id;
  /** MMF_HAS_PINNED: some page of this mm was ever FOLL_PIN'ed (§1.1). */
  hasPinned: boolean;
  /**
   * Not kernel state: the reference model of what this process reads at
   * each page by the POSIX meaning of the syscalls it made (models/mm/user.ts):
   * a hole where nothing is mapped, USER_ZERO, a content id, or
   * USER_SWAPPED. The user-view property compares it with the page tables.
   */
  user: readonly (number | undefined)[];
}

export interface Vma {
  id: Id;
  mm: Id;
  /** Half-open page range [start, end). */
  start: number;
  end: number;
  /** vm_pgoff in pages; for anonymous VMAs a virtual page offset (§1.2). */
  pgoff: number;
  flags: number;
  /** vm_ops->close is set: never removed by a merge. */
  hasClose: boolean;
  anonVma: Id;
  /** anon_vma_chain: AVC ids in list order, head first (§1.4). */
  chain: readonly Id[];
  /** In the mm's VMA tree (vma_is_attached). */
  attached: boolean;
  /**
   * vm_lock_seq (CONFIG_PER_VMA_LOCK, §1.2): the mm's lockSeq when
   * vma_start_write last locked it; -1 for a new VMA (vma_lock_init).
   */
  lockSeq: number;
  /** Per-VMA read locks held (vm_refcnt beyond the attached reference): faults under lock_vma_under_rcu. */
  readers: number;
}

/** vma->vm_lock_seq == mm->mm_lock_seq (__is_vma_write_locked): the VMA is write-locked until the mmap write lock is dropped. */
export const vmaWriteLocked = (v: Readonly<Vma>, m: Readonly<Mm>): boolean => v.lockSeq === m.lockSeq;

export interface AnonVma {
  id: Id;
  root: Id;
  parent: Id;
  refcount: number;
  numChildren: number;
  numActiveVmas: number;
  /** rb_root: AVC ids in interval-tree in-order (by start pgoff, equal starts in insertion order, §1.4). */
  tree: readonly Id[];
  /** The rwsem; only the root's is ever taken (§1.3). */
  rwsem: Readonly<LockState>;
  /** Freed anon_vmas stay as tombstones so that a later use is caught. */
  freed: boolean;
  /** Extra counters added by variants (e.g. the pre-2022 degree). */
  ext?: Readonly<Record<string, number>>;
}

export interface Avc {
  id: Id;
  vma: Id;
  anonVma: Id;
  inTree: boolean;
  /**
   * The interval-tree key [vm_pgoff, vm_pgoff + pages - 1] of the VMA when
   * the AVC was inserted (the kernel's debug cached_vma_start/last, checked
   * by anon_vma_interval_tree_verify): a VMA range change without the
   * pre/post update leaves it stale (I10).
   */
  cachedStart: number;
  cachedLast: number;
}

export interface Folio {
  id: Id;
  /** folio->mapping as an anon_vma id (NIL: not anon yet). */
  anonVma: Id;
  /** folio->index: linear page index of the first page (§1.5). */
  index: number;
  nrPages: number;
  /** Number of PTEs mapping any page of the folio (§1.5, I8). */
  mapcount: number;
  /** PageAnonExclusive, one bit per page. */
  exclusive: number;
  /** folio_maybe_dma_pinned (a long-term GUP pin). */
  pinned: boolean;
  /** The folio lock holder (thread id) or NIL. */
  locked: Id;
  /**
   * The memory contents, one content id per page (USER_ZERO: zero-filled).
   * Written by a user store after a write fault (user.ts) and copied by
   * wp_page_copy / copy_present_page; replaced as a whole, never in place.
   */
  data: readonly number[];
}

/** A page that reads as zeros (a new anonymous page, the zero page). */
export const USER_ZERO = 0;

/**
 * An empty list of records (a thread's held locks, the mappings a walker has
 * seen), already of the element kind it takes once a record is added (packed,
 * of objects): empty and filled lists then share one V8 hidden class.
 */
export function emptyRecords<T>(): T[] {
  const list = [undefined as T];
  list.length = 0;
  return list;
}

/**
 * An empty page table, already of the element kind V8 gives every page table
 * once a PTE is cleared or set out of order (holey, of objects): otherwise
 * page tables come in three hidden classes (empty, packed, holey) and every
 * reader of them is polymorphic.
 */
export function emptyPageTable(): (Pte | undefined)[] {
  const ptes = new Array<Pte | undefined>(1);
  ptes[0] = undefined;
  ptes.length = 0;
  return ptes;
}

/** An empty reference view (Mm.user), holey from the start as views become (pages are set out of order). */
export function emptyUserView(): (number | undefined)[] {
  return new Array<number | undefined>(0);
}

/**
 * A new mm (mm_alloc): no VMAs, no PTEs, free locks. Its fields in the order
 * unpacking writes them (pack.ts readMm), so every mm has one hidden class.
 */
export function newMm(id: Id, parent: Id, hasPinned = false): Mm {
  return { id, parent, vmas: [], ptes: emptyPageTable(), mmapLock: freeLock(), lockSeq: 0, pageTableLock: NIL, ptl: NIL, hasPinned, user: emptyUserView() } satisfies All<Mm>;
}

/**
 * A new folio's contents: nrPages zero-filled pages, in a packed list as
 * unpacking makes it (new Array(n).fill() stays holey in V8: a second hidden
 * class for every reader of folio contents).
 */
export function zeroPages(nrPages: number): number[] {
  const data: number[] = [];
  for (let i = 0; i < nrPages; i++) data.push(USER_ZERO);
  return data;
}

/**
 * A page of the reference model whose content the kernel model cannot show:
 * reclaim unmapped it (swap is not modelled), so any content, or zeros,
 * may be read back; only its being mapped is checked.
 */
export const USER_SWAPPED = -1;

/**
 * The outcome of the syscall that completed in the transition that made a
 * state (not part of the canonical form: two states that differ only in it
 * are one state). 0, -errno, or SIGSEGV for a fault the kernel answers with
 * the signal. Transition properties and traces read it.
 */
export interface SyscallResult {
  proc: Id;
  ret: number;
}

/** A fault outside every VMA or without the access right: the kernel sends SIGSEGV (do_user_addr_fault's bad_area). */
export const SIGSEGV = -1000;

/**
 * Prefixes of s.warnings entries that are not kernel asserts but records a
 * property reads: a merge removed a VMA with ->close; a relocation rewrote a
 * folio not mapped exactly once; a fork adopted an anon_vma the reuse rule
 * forbids; an uncontended try_to_unmap walk left a mapping it should have
 * seen; a lock was taken or released against lockdep's rules.
 */
export const RECORD = {
  closeRemoved: 'close-removed:',
  relocateShared: 'relocate-shared:',
  forkReuse: 'fork-reuse:',
  walkerMissed: 'walker-missed:',
  lockdep: 'lockdep:',
} as const;

/** Allocation points that can be made to fail with ENOMEM. */
export type AllocKind = 'avc' | 'anon_vma' | 'vma' | 'prealloc' | 'folio' | 'pte';

export interface Budgets {
  /** ENOMEM injections still allowed. */
  enomem: number;
  /** rmap walkers that may still be started (lock granularity; absent: none). */
  walkers?: number;
  /**
   * Threads a process may have (lock granularity, --threads; absent: one).
   * Constant along a search: it tells a fault whether another thread of its
   * mm can hold the PTE lock, where the fault's path is cut (memory.ts).
   */
  threads?: number;
}

/** A lock a thread holds across steps (lock granularity), for lockdep's order check. */
export type LockClass = 'mmap_lock' | 'folio_lock' | 'vma_lock' | 'anon_vma_rwsem' | 'page_table_lock' | 'ptl';

export interface HeldLock {
  cls: LockClass;
  /** The mm, folio or root anon_vma the lock belongs to. */
  id: Id;
  write: boolean;
}

/** Thread ids of rmap walkers start here; a syscall thread's id is syscallThread(process, index). */
export const WALKER_BASE = 1 << 16;

/**
 * Threads a process may have (--threads, issue 17). Thread 0 is the one
 * `P0` names; `P0.1` is thread 1 of process 0, sharing its mm.
 */
export const MAX_THREADS = 4;
/** A syscall thread's id: its process in the low byte, its index within the process above it. */
const THREAD_SHIFT = 8;
export const syscallThread = (proc: Id, index: number): Id => proc + (index << THREAD_SHIFT);
/** The process of a syscall thread id. */
export const procOfThread = (id: Id): Id => id & ((1 << THREAD_SHIFT) - 1);
/** The index of a syscall thread within its process (0 for `P0`). */
export const threadIndex = (id: Id): number => id >> THREAD_SHIFT;

/** The key of thread index of process proc, and of walker n (threadKey's two halves, for loops over either). */
const procKey = (proc: Id, index: number): number => 2 * (proc * MAX_THREADS + index);
const walkerKey = (n: number): number => 2 * n + 1;

/**
 * Where thread id lives in State.threads: a syscall thread at twice its
 * (process, index) position, walker n at 2n + 1. The keys stay small and
 * dense, so V8 keeps the table a fast object; keyed by WALKER_BASE + n it
 * fell back to a dictionary, which cost about 1 µs to copy on every step.
 */
export const threadKey = (id: Id): number => (id >= WALKER_BASE ? walkerKey(id - WALKER_BASE) : procKey(procOfThread(id), threadIndex(id)));

/** Thread id of s, if in flight. */
export const threadOf = (s: State, id: Id): Thread | undefined => s.threads[threadKey(id)];

export type WalkerKind = 'reclaim' | 'referenced' | 'migrate';

/**
 * Each walker kind as a small integer, for the canonical encoding and the
 * pack (0 stands for a syscall thread). A Record over WalkerKind, so a kind
 * added to the type and missing here is a compile-time error.
 */
export const WALKER_CODE: Readonly<Record<WalkerKind, number>> = { reclaim: 1, referenced: 2, migrate: 3 };

/**
 * A thread in flight at lock granularity (DESIGN.md §2): a syscall between
 * two of its steps, or an rmap walker. pc names the kernel function the next
 * step starts in; the locals are what that step needs from the earlier ones.
 */
export interface Thread {
  id: Id;
  /** The process a syscall runs in; the process a walker was started from (for display). */
  proc: Id;
  /** The syscall a process thread runs. */
  op?: SyscallOp;
  /** What a walker thread runs. */
  walker?: WalkerKind;
  pc: string;
  /** Locks held across steps, in acquisition order. */
  held: HeldLock[];
  /**
   * The rwsem this thread waits on as a queued writer (rwsem_down_write_slowpath
   * put it on the wait list), or undefined. A queued writer blocks new readers
   * (the kernel's handoff, §6), so readers queue behind it.
   */
  queued: { cls: LockClass; id: Id } | undefined;
  /** Allocations made by earlier steps (ENOMEM injection counts across steps). */
  allocs: number;
  failAt: number;
  /** Id-valued locals by kind (renamed by the canonical encoding). */
  mms: Id[];
  vmas: Id[];
  anonVmas: Id[];
  folios: Id[];
  /** Plain numeric locals. */
  nums: number[];
  /** A walker's snapshot: the (process, page-of-folio) pairs mapping its folio when the walk began. */
  seen: { mm: Id; sub: number }[];
}


export interface State {
  mms: Record<Id, Mm>;
  vmas: Record<Id, Vma>;
  anonVmas: Record<Id, AnonVma>;
  avcs: Record<Id, Avc>;
  folios: Record<Id, Folio>;
  /** Next free id per table; not part of the canonical form. */
  nextId: { mm: Id; vma: Id; anonVma: Id; avc: Id; folio: Id; walker: Id; content: Id };
  budgets: Budgets;
  /** Threads in flight at lock granularity, by threadKey of their id (empty at syscall granularity). */
  threads: Record<number, Thread>;
  /** Kernel asserts (WARN/BUG) that fired, by name, in order, without repeats. */
  warnings: string[];
  /** Accesses to freed anon_vmas made by a kernel path (a use-after-free), in order. */
  uaf: string[];
  /** The syscall that completed in the transition that made this state, if one did (not canonical). */
  result: SyscallResult | undefined;
}

export function emptyState(budgets: Budgets = { enomem: 0 }): State {
  return {
    mms: {},
    vmas: {},
    anonVmas: {},
    avcs: {},
    folios: {},
    nextId: { mm: 0, vma: 0, anonVma: 0, avc: 0, folio: 0, walker: 0, content: 1 },
    budgets,
    threads: {},
    warnings: [],
    uaf: [],
    result: undefined,
  };
}

/**
 * The pages of a page table that hold a PTE, ascending. An entry may be a
 * hole or, after an immer produce deleted it, undefined: both mean no PTE.
 */
export function ptePages(ptes: readonly (Pte | undefined)[]): number[] {
  const out: number[] = [];
  for (let page = 0; page < ptes.length; page++) if (ptes[page] !== undefined) out.push(page);
  return out;
}

/** Call f on every thread, syscall threads (by process, then index) first, then walkers (by id): id order, without for-in. */
export function forEachThread(s: State, f: (t: Thread) => void): void {
  const threads = s.threads;
  for (let id = 0; id < s.nextId.mm; id++)
    for (let i = 0; i < MAX_THREADS; i++) {
      const t = threads[procKey(id, i)];
      if (t !== undefined) f(t);
    }
  for (let n = 0; n < s.nextId.walker; n++) {
    const t = threads[walkerKey(n)];
    if (t !== undefined) f(t);
  }
}

/** One past the highest key table `name` of s can hold: its next id (threads: one past the keys of the last process's last thread and of the last walker). */
export function keyBound(s: State, name: 'mms' | 'vmas' | 'anonVmas' | 'avcs' | 'folios' | 'threads'): number {
  const n = s.nextId;
  switch (name) {
    case 'mms':
      return n.mm;
    case 'vmas':
      return n.vma;
    case 'anonVmas':
      return n.anonVma;
    case 'avcs':
      return n.avc;
    case 'folios':
      return n.folio;
    case 'threads':
      return Math.max(procKey(n.mm, 0) - 1, walkerKey(n.walker) - 1);
  }
}

/** The processes alive in s. */
export function liveProcs(s: State): number {
  let n = 0;
  for (let id = 0; id < s.nextId.mm; id++) if (s.mms[id] !== undefined) n++;
  return n;
}

/** Any thread in flight. */
export function anyThread(s: State): boolean {
  const threads = s.threads;
  const end = procKey(s.nextId.mm, 0);
  for (let key = 0; key < end; key += 2) if (threads[key] !== undefined) return true;
  for (let n = 0; n < s.nextId.walker; n++) if (threads[walkerKey(n)] !== undefined) return true;
  return false;
}

/** The syscall threads of process proc in flight, by index. */
export function procThreads(s: State, proc: Id, f: (t: Thread) => void): void {
  for (let i = 0; i < MAX_THREADS; i++) {
    const t = s.threads[procKey(proc, i)];
    if (t !== undefined) f(t);
  }
}

/** A walker holds a reference on its folio: the folio is not freed while walked (§2.12). */
export function walkerHolds(threads: State['threads'], walkers: number, folioId: Id): boolean {
  for (let n = 0; n < walkers; n++) {
    const t = threads[walkerKey(n)];
    if (t !== undefined && t.folios[0] === folioId) return true;
  }
  return false;
}

export const freeLock = (): LockState => ({ writer: NIL, readers: 0 });

/** Number of pages of a VMA (vma_pages). */
export const vmaPages = (v: Vma): number => v.end - v.start;

/** linear_page_index(vma, addr) (include/linux/pagemap.h; §1.5). */
export const linearPageIndex = (v: Vma, page: number): number => page - v.start + v.pgoff;

/** Iterate a table's values in id order (JS orders integer keys ascending). */
export function values<T>(table: Record<Id, T>): T[] {
  return Object.values(table);
}

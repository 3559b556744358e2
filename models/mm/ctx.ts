// The execution context of one kernel path: the state it mutates (an immer
// draft, or a copy-on-write state on the explorer's path, cow.ts), the
// overridable table of kernel functions every call goes through (so a variant
// that replaces one function changes it for every caller, DESIGN.md §6), the
// calling thread, and the allocation counter used to inject ENOMEM.
import { peek } from './draft.ts';
import { copyAnonVma, copyAvc, copyFolio, copyMm, copyThread, copyVma, type All } from './cow.ts';
import { emptyRecords, keyBound, threadKey, type AllocKind, type AnonVma, type Avc, type Folio, type HeldLock, type Id, type Mm, type Pte, type State, type Thread, type Vma } from './state.ts';
import type { Kernel } from './kernel.ts';

export interface Ctx {
  /** The state being mutated: an immer draft, or a copy-on-write state (cow.ts). */
  s: State;
  /** Kernel functions; call them as c.k.fn(c, ...). */
  k: Kernel;
  /** The calling thread (a process id for syscalls, WALKER_BASE + n for walkers). */
  thread: Id;
  /**
   * Lock granularity: taking a lock another thread holds blocks (the step is
   * not enabled) instead of being recorded as a lockdep error.
   */
  blocking: boolean;
  /** Locks the thread holds, in acquisition order (for lockdep's order check). */
  held: HeldLock[];
  /** Lock acquisitions and releases made so far in this step: a writer queues on an rwsem only at its step's first (locks.ts). */
  lockOps: number;
  /** The releases among them. */
  releases: number;
  /** Lock granularity: the thread (a draft) whose step this is; lock points end the step (sched.ts). */
  t?: Thread;
  /** The lock point this step resumes at: passing it does not end the step. */
  resumeAt?: string;
  /** Allocations made so far by this syscall. */
  allocs: number;
  /** The allocation (1-based) that fails with ENOMEM, or 0 for none. */
  failAt: number;
  /** Allocation kinds made, in order (tells the explorer where ENOMEM can be injected). */
  allocLog: AllocKind[];
  /** The tables of s, read from s once (each read of s.x goes through a proxy trap). */
  tables?: Partial<Pick<State, 'mms' | 'vmas' | 'anonVmas' | 'avcs' | 'folios'>>;
  /**
   * Copy-on-write transitions (cow.ts): the tables, records and page tables
   * this transition has copied or created, which it may write. undefined
   * under immer, where the draft does the copying.
   */
  own?: object[];
}

export { peek, readable } from './draft.ts';

export function makeCtx(s: State, k: Kernel, thread: Id, failAt = 0, own?: object[]): Ctx {
  // Every field, those a step sets later (t, resumeAt) too: a field added
  // after the literal gives contexts a second V8 hidden class, and every
  // kernel function reads its context.
  return { s, k, thread, blocking: false, held: emptyRecords(), lockOps: 0, releases: 0, t: undefined, resumeAt: undefined, allocs: 0, failAt, allocLog: [], tables: undefined, own } satisfies All<Ctx>;
}

type TableName = 'mms' | 'vmas' | 'anonVmas' | 'avcs' | 'folios';

/**
 * Under immer, the table c.s[name] looked up once per context (a table is
 * never replaced, only its entries; each read of a draft goes through a
 * proxy trap). A copy-on-write state is plain: callers read c.s.<table>.
 */
function table<N extends TableName>(c: Ctx, name: N): State[N] {
  const t = (c.tables ??= {});
  return (t[name] ??= c.s[name]) as State[N];
}

/**
 * Under copy-on-write, table `name` of c.s, made the transition's own first:
 * a table still shared with the parent state is replaced by a shallow copy
 * (its records stay shared). A transition owns few objects, so a linear scan
 * of them is cheaper than a Set.
 */
function ownTable<N extends TableName | 'threads'>(c: Ctx, name: N): State[N] {
  const own = c.own!;
  const t = c.s[name];
  if (own.includes(t)) return t;
  const mine = copyTable(t as Record<Id, unknown>, keyBound(c.s, name)) as State[N];
  c.s[name] = mine;
  own.push(mine);
  return mine;
}

/**
 * Tables whose keys are all below this are copied with object spread, the
 * fastest copy (about 20 ns against 115 for the loop below, measured on the
 * tables of a search). V8 gives an object dictionary elements only when a
 * delete leaves a backing store of 64 slots or more mostly empty
 * (kMinLengthForSparsenessCheck, v8/src/objects/elements.cc), and a store
 * at key k grows the store to at most k + 1 + (k + 1) / 2 + 16 slots: 62
 * for keys below 31. In a census of long walks every table with dictionary
 * elements had a bound above 32.
 */
const SPREAD_MAX_BOUND = 31;

/**
 * A shallow copy of an id-keyed table whose keys are below `bound`. Above
 * SPREAD_MAX_BOUND by index, not with object spread: once spread has copied
 * one object with dictionary (or frozen) elements, every later spread of a
 * table in the process takes a slow path (0.4 to 0.7 µs instead of 0.02 to
 * 0.05), which cost long random walks a tenth of their time.
 */
function copyTable<T>(t: Record<Id, T>, bound: number): Record<Id, T> {
  if (bound <= SPREAD_MAX_BOUND) return { ...t };
  const mine: Record<Id, T> = {};
  for (let id = 0; id < bound; id++) {
    const x = t[id];
    if (x !== undefined) mine[id] = x;
  }
  return mine;
}

/**
 * Record id of table `name`, to be written: under copy-on-write, a record
 * still shared with the parent state is replaced by a private copy first
 * (in the transition's own copy of the table).
 */
function writable<N extends TableName | 'threads'>(c: Ctx, name: N, id: Id, x: State[N][Id], copy: (x: State[N][Id]) => State[N][Id]): State[N][Id] {
  const own = c.own;
  if (own === undefined || own.includes(x)) return x;
  const mine = copy(x);
  ownTable(c, name)[id] = mine;
  own.push(mine);
  return mine;
}

/**
 * Store a record created by this transition (it is the transition's own: no
 * copy on write). Its key must be below the table's next id (keyBound):
 * the canonical encoding, the pack and copyTable read no key above it.
 */
export function insert<N extends TableName | 'threads'>(c: Ctx, name: N, id: Id, x: State[N][Id]): void {
  if (id >= keyBound(c.s, name)) throw new Error(`model bug: ${name} record ${id} stored at or above the table's next id (take ids from State.nextId)`);
  if (c.own === undefined) c.s[name][id] = x;
  else {
    ownTable(c, name)[id] = x;
    c.own.push(x);
  }
}

/** Remove record id of table `name` (a kernel free). */
export function remove(c: Ctx, name: TableName | 'threads', id: Id): void {
  if (c.own === undefined) delete c.s[name][id];
  else delete ownTable(c, name)[id];
}

/** Record a kernel assert (WARN/BUG) by name; the state keeps each name once. */
export function warn(c: Ctx, name: string): void {
  if (!c.s.warnings.includes(name)) c.s.warnings.push(name);
}

/** An allocation point: returns false when this allocation is the injected ENOMEM. */
export function allocOk(c: Ctx, kind: AllocKind): boolean {
  c.allocs++;
  c.allocLog.push(kind);
  return c.allocs !== c.failAt;
}

/**
 * Dereference an anon_vma. Touching a freed one is recorded as a
 * use-after-free (the no-use-after-free property reports it), and the
 * tombstone is returned so that the path goes on as the kernel would.
 */
export function av(c: Ctx, id: Id, where: string): AnonVma {
  const t = c.own !== undefined ? c.s.anonVmas : table(c, 'anonVmas');
  const a = t[id];
  if (a === undefined) throw new Error(`model bug: no anon_vma ${id} (${where})`);
  if (a.freed) useAfterFree(c, id, where);
  return writable(c, 'anonVmas', id, a, copyAnonVma);
}

/**
 * The anon_vma record for writing a variant's own bookkeeping (ext fields,
 * like the pre-2022 degree), which is not a kernel access: no use-after-free
 * is recorded. undefined when there is no such record.
 */
export function anonVmaBookkeeping(c: Ctx, id: Id): AnonVma | undefined {
  const t = c.own !== undefined ? c.s.anonVmas : table(c, 'anonVmas');
  const a = t[id];
  return a === undefined ? undefined : writable(c, 'anonVmas', id, a, copyAnonVma);
}

/** Record a use-after-free of anon_vma id by where (each name once). */
function useAfterFree(c: Ctx, id: Id, where: string): void {
  const name = `use-after-free: A${id} in ${where}`;
  if (!c.s.uaf.includes(name)) c.s.uaf.push(name);
}

export function vma(c: Ctx, id: Id): Vma {
  const t = c.own !== undefined ? c.s.vmas : table(c, 'vmas');
  const v = t[id];
  if (v === undefined) throw new Error(`model bug: no vma ${id}`);
  return writable(c, 'vmas', id, v, copyVma);
}

export function avc(c: Ctx, id: Id): Avc {
  const t = c.own !== undefined ? c.s.avcs : table(c, 'avcs');
  const a = t[id];
  if (a === undefined) throw new Error(`model bug: no avc ${id}`);
  return writable(c, 'avcs', id, a, copyAvc);
}

export function mm(c: Ctx, id: Id): Mm {
  const t = c.own !== undefined ? c.s.mms : table(c, 'mms');
  const m = t[id];
  if (m === undefined) throw new Error(`model bug: no mm ${id}`);
  return writable(c, 'mms', id, m, copyMm);
}

/**
 * set_pte_at / set_ptes (include/linux/pgtable.h; kernel-semantics §2.8,
 * §2.11, §4): install (or, with undefined, clear) the PTE of page in mm's
 * page table. The only way a page table is
 * written: under copy-on-write it copies the table the first time a
 * transition writes it, so the PTE objects themselves are never written.
 */
export function set_pte_at(c: Ctx, mmId: Id, page: number, pte: Readonly<Pte> | undefined): void {
  const m = mm(c, mmId);
  let ptes = m.ptes as (Readonly<Pte> | undefined)[];
  if (c.own !== undefined && !c.own.includes(ptes)) {
    ptes = ptes.slice();
    m.ptes = ptes;
    c.own.push(ptes);
  }
  if (pte === undefined) delete ptes[page];
  else ptes[page] = pte;
}

/** pte_clear / ptep_get_and_clear (include/linux/pgtable.h; kernel-semantics §4, §5): the page has no PTE any more. */
export function pte_clear(c: Ctx, mmId: Id, page: number): void {
  set_pte_at(c, mmId, page, undefined);
}

/** The thread tid, to be written (a thread's pc, locals and held locks change at each step). */
export function threadW(c: Ctx, tid: Id): Thread {
  const key = threadKey(tid);
  const x = c.s.threads[key];
  if (x === undefined) throw new Error(`model bug: no thread ${tid}`);
  return writable(c, 'threads', key, x, copyThread);
}

export function folio(c: Ctx, id: Id): Folio {
  const t = c.own !== undefined ? c.s.folios : table(c, 'folios');
  const f = t[id];
  if (f === undefined) throw new Error(`model bug: no folio ${id}`);
  return writable(c, 'folios', id, f, copyFolio);
}

// Read-only accessors: the same lookups, without making a draft of what they
// read (see draft.ts). What they return may be the object of the state before
// this produce: read it before anything writes to that object, and never
// write to it or store it in the state.

/** av for reading only: the same use-after-free recording. */
export function avR(c: Ctx, id: Id, where: string): Readonly<AnonVma> {
  const a = c.own !== undefined ? c.s.anonVmas[id] : peek(table(c, 'anonVmas'), id);
  if (a === undefined) throw new Error(`model bug: no anon_vma ${id} (${where})`);
  if (a.freed) useAfterFree(c, id, where);
  return a;
}

/** vma for reading only. */
export function vmaR(c: Ctx, id: Id): Readonly<Vma> {
  const v = c.own !== undefined ? c.s.vmas[id] : peek(table(c, 'vmas'), id);
  if (v === undefined) throw new Error(`model bug: no vma ${id}`);
  return v;
}

/** avc for reading only. */
export function avcR(c: Ctx, id: Id): Readonly<Avc> {
  const a = c.own !== undefined ? c.s.avcs[id] : peek(table(c, 'avcs'), id);
  if (a === undefined) throw new Error(`model bug: no avc ${id}`);
  return a;
}

/** mm for reading only. */
export function mmR(c: Ctx, id: Id): Readonly<Mm> {
  const m = c.own !== undefined ? c.s.mms[id] : peek(table(c, 'mms'), id);
  if (m === undefined) throw new Error(`model bug: no mm ${id}`);
  return m;
}

/** mm(c, id).vmas for reading only: VMA ids sorted by vm_start. */
export function mmVmas(c: Ctx, id: Id): readonly Id[] {
  return peek(mmR(c, id), 'vmas');
}

/** mm(c, id).ptes[page] for reading only. */
export function pteR(c: Ctx, mmId: Id, page: number): Readonly<Pte> | undefined {
  return peek(peek(mmR(c, mmId), 'ptes'), page);
}

// The explorer's transition path without immer (DESIGN.md §2, issue 12):
// copy-on-write per table and per record. A transition starts from a state
// that shares the parent's tables; the Ctx write accessors (ctx.ts: mm, vma,
// av, avc, folio, threadW, insert, remove, set_pte_at) copy a table, a
// record or a page table the first time the transition writes it, and
// remember what it owns (Ctx.own). The parent is never written: reads go to
// shared objects, writes to private copies. The kernel functions are the
// same code under immer (the reference semantics: run, replay, tests) and
// here; a differential test keeps the two identical
// (test/transitions.test.ts), and --check-immutability freezes every parent
// to catch a write that bypasses the accessors.
//
// Every copy below is an object literal checked against All<T>: a field
// added to a record type and missed here is a compile-time error, not a
// silent share. (An optional field is copied as a present key holding
// undefined: deleting it would cost the object its fast shape.) Fields whose
// type is readonly (a VMA's chain, an anon_vma's tree, a page table, a lock
// state) are shared: the kernel functions replace them and never write into
// them, which the compiler enforces; a page table is written only through
// set_pte_at (ctx.ts), which copies it first; a folio's data and an mm's
// user view are replaced whole (user.ts).
import { emptyRecords, type AnonVma, type Avc, type Budgets, type Folio, type HeldLock, type Id, type Mm, type State, type Thread, type Vma } from './state.ts';

/** Every key of T, the optional ones too: a literal of this type must name them all. */
export type All<T> = { [K in keyof T & string]: T[K] };

export function copyMm(m: Mm): Mm {
  return {
    id: m.id,
    parent: m.parent,
    vmas: m.vmas,
    ptes: m.ptes,
    mmapLock: m.mmapLock,
    lockSeq: m.lockSeq,
    pageTableLock: m.pageTableLock,
    ptl: m.ptl,
    hasPinned: m.hasPinned,
    user: m.user,
  } satisfies All<Mm>;
}

export function copyVma(v: Vma): Vma {
  return {
    id: v.id,
    mm: v.mm,
    start: v.start,
    end: v.end,
    pgoff: v.pgoff,
    flags: v.flags,
    hasClose: v.hasClose,
    anonVma: v.anonVma,
    chain: v.chain,
    attached: v.attached,
    lockSeq: v.lockSeq,
    readers: v.readers,
  } satisfies All<Vma>;
}

export function copyAnonVma(a: AnonVma): AnonVma {
  return {
    id: a.id,
    root: a.root,
    parent: a.parent,
    refcount: a.refcount,
    numChildren: a.numChildren,
    numActiveVmas: a.numActiveVmas,
    tree: a.tree,
    rwsem: a.rwsem,
    freed: a.freed,
    ext: a.ext,
  } satisfies All<AnonVma>;
}

export function copyAvc(a: Avc): Avc {
  return {
    id: a.id,
    vma: a.vma,
    anonVma: a.anonVma,
    inTree: a.inTree,
    cachedStart: a.cachedStart,
    cachedLast: a.cachedLast,
  } satisfies All<Avc>;
}

export function copyFolio(f: Folio): Folio {
  return {
    id: f.id,
    anonVma: f.anonVma,
    index: f.index,
    nrPages: f.nrPages,
    mapcount: f.mapcount,
    exclusive: f.exclusive,
    pinned: f.pinned,
    locked: f.locked,
    data: f.data,
  } satisfies All<Folio>;
}

/** Copies of a list's records, in a list of one hidden class whether empty or not (emptyRecords; Array.map of an empty list would not be). */
function copyRecords<T>(list: readonly T[], copy: (x: T) => T): T[] {
  const out = emptyRecords<T>();
  for (const x of list) out.push(copy(x));
  return out;
}

const held = (h: HeldLock): HeldLock => ({ cls: h.cls, id: h.id, write: h.write }) satisfies All<HeldLock>;

export function copyThread(t: Thread): Thread {
  return {
    id: t.id,
    proc: t.proc,
    // A syscall op is never written after it is issued: shared.
    op: t.op,
    walker: t.walker,
    pc: t.pc,
    held: copyRecords(t.held, held),
    // Replaced whole, never written in place: shared.
    queued: t.queued,
    allocs: t.allocs,
    failAt: t.failAt,
    mms: t.mms.slice(),
    vmas: t.vmas.slice(),
    anonVmas: t.anonVmas.slice(),
    folios: t.folios.slice(),
    nums: t.nums.slice(),
    seen: copyRecords(t.seen, (p) => ({ mm: p.mm, sub: p.sub })),
  } satisfies All<Thread>;
}

const budgets = (b: Budgets): Budgets => ({ enomem: b.enomem, walkers: b.walkers, threads: b.threads }) satisfies All<Budgets>;

/**
 * The start of a transition from parent: the tables are the parent's,
 * shared until the transition first writes one (ctx.ts copies it then);
 * the small fields are copied.
 */
export function cowState(p: State): State {
  return {
    mms: p.mms,
    vmas: p.vmas,
    anonVmas: p.anonVmas,
    avcs: p.avcs,
    folios: p.folios,
    nextId: { mm: p.nextId.mm, vma: p.nextId.vma, anonVma: p.nextId.anonVma, avc: p.nextId.avc, folio: p.nextId.folio, walker: p.nextId.walker, content: p.nextId.content },
    budgets: budgets(p.budgets),
    threads: p.threads,
    warnings: p.warnings.slice(),
    uaf: p.uaf.slice(),
    // A transition starts with no syscall completed in it.
    result: undefined,
  } satisfies All<State>;
}

/**
 * Freeze a state and everything in it (--check-immutability): a transition
 * that writes to its parent then throws a TypeError at the write, which
 * names the function that did it.
 */
export function deepFreeze<T>(x: T): T {
  if (typeof x !== 'object' || x === null || Object.isFrozen(x)) return x;
  for (const k of Object.keys(x)) deepFreeze((x as Record<string, unknown>)[k]);
  return Object.freeze(x);
}

// Hand-built states, the way the kernel's tools/testing/vma harness builds
// VMAs by hand: make mms, VMAs, anon_vmas, AVCs, folios and PTEs directly,
// then call internal functions on the result or check properties on it.
//
//   const b = new ScenarioBuilder();
//   const p0 = b.mm();
//   const r = b.anonVma();
//   const v = b.vma(p0, { start: 0, end: 4 });      // pgoff defaults to start
//   b.link(v, r);                                  // AVC at chain head + tree insert
//   b.setAnon(v, r);                               // vma->anon_vma = r
//   const f = b.folio({ anonVma: r, index: 1, exclusive: true });
//   b.pte(p0, 1, f);                               // maps f at page 1, mapcount++
//   const s = b.fillCounters().build();
//
// Nothing here checks consistency: a test may build a broken state on purpose.
import { i6Counters, type Counters } from '../../properties/counters.ts';
import { kernelRead } from './user.ts';
import {
  NIL,
  VM_EXEC,
  VM_NOMERGE,
  VM_READ,
  VM_SPECIAL,
  VM_WRITE,
  zeroPages,
  newMm,
  ZERO_PAGE,
  emptyState,
  freeLock,
  vmaPages,
  type Budgets,
  type Id,
  type Mm,
  type Pte,
  type State,
  ptePages,
} from './state.ts';

export type Prot = 'r' | 'rw' | 'rx' | 'rwx';

export function protFlags(prot: Prot): number {
  switch (prot) {
    case 'r':
      return VM_READ;
    case 'rw':
      return VM_READ | VM_WRITE;
    case 'rx':
      return VM_READ | VM_EXEC;
    case 'rwx':
      return VM_READ | VM_WRITE | VM_EXEC;
  }
}

export interface VmaOpts {
  start: number;
  end: number;
  /** vm_pgoff; defaults to start (as mmap sets it for anon private mappings, §1.2). */
  pgoff?: number;
  /** Default 'rw'. */
  prot?: Prot;
  /** vm_ops->close set. */
  close?: boolean;
  /** VM_SPECIAL. */
  special?: boolean;
  /** The merge-incompatible bit. */
  nomerge?: boolean;
  /** In the mm's VMA tree; default true (a detached VMA is not listed in mm.vmas). */
  attached?: boolean;
}

export interface AnonVmaOpts {
  /** Defaults to self (a root). */
  parent?: Id;
  /** Defaults to the parent's root (self for a root). */
  root?: Id;
  refcount?: number;
  numChildren?: number;
  numActiveVmas?: number;
  freed?: boolean;
}

export interface FolioOpts {
  /** folio->mapping; default NIL. */
  anonVma?: Id;
  /** folio->index; default 0. */
  index?: number;
  /** Default 1. */
  nrPages?: number;
  /** Initial mapcount; default 0 (each pte() adds one). */
  mapcount?: number;
  /** PageAnonExclusive: true = every page, or a bit mask; default none. */
  exclusive?: boolean | number;
  pinned?: boolean;
  /** Folio lock holder; default NIL. */
  locked?: Id;
  /** Content id per page; default zero-filled. */
  data?: number[];
}

export interface PteOpts {
  /** Default true. */
  writable?: boolean;
  /** Page within the folio; default 0. */
  sub?: number;
  /** Add one to the folio's mapcount (default true; the zero page is never counted). */
  account?: boolean;
}

export interface LinkOpts {
  /** Insert into the anon_vma's tree (default true); false leaves the AVC on the chain only. */
  inTree?: boolean;
}

/** A copy of a page table with page's PTE set (or cleared, with undefined). */
export function withPte(ptes: Mm['ptes'], page: number, pte: Pte | undefined): Mm['ptes'] {
  const out = ptes.slice();
  if (pte === undefined) delete out[page];
  else out[page] = pte;
  return out;
}

export class ScenarioBuilder {
  /** The state under construction; tests may edit it directly for cases the builder does not cover. */
  readonly s: State;

  constructor(budgets: Budgets = { enomem: 0 }) {
    this.s = emptyState(budgets);
  }

  /** A new mm with no VMAs and free locks. */
  mm(opts: { parent?: Id; hasPinned?: boolean } = {}): Id {
    const id = this.s.nextId.mm++;
    this.s.mms[id] = newMm(id, opts.parent ?? NIL, opts.hasPinned ?? false);
    return id;
  }

  /** A new anon_vma; counters 0 unless given (see fillCounters). */
  anonVma(opts: AnonVmaOpts = {}): Id {
    const id = this.s.nextId.anonVma++;
    const parent = opts.parent ?? id;
    const root = opts.root ?? (parent === id ? id : this.anon(parent).root);
    this.s.anonVmas[id] = {
      id,
      root,
      parent,
      refcount: opts.refcount ?? 0,
      numChildren: opts.numChildren ?? 0,
      numActiveVmas: opts.numActiveVmas ?? 0,
      tree: [],
      rwsem: freeLock(),
      freed: opts.freed ?? false,
    };
    return id;
  }

  /** A new VMA of mm `mmId`, inserted into the mm's list by start (unless detached). */
  vma(mmId: Id, opts: VmaOpts): Id {
    const m = this.mmOf(mmId);
    const id = this.s.nextId.vma++;
    let flags = protFlags(opts.prot ?? 'rw');
    if (opts.special) flags |= VM_SPECIAL;
    if (opts.nomerge) flags |= VM_NOMERGE;
    const attached = opts.attached ?? true;
    this.s.vmas[id] = {
      id,
      mm: mmId,
      start: opts.start,
      end: opts.end,
      pgoff: opts.pgoff ?? opts.start,
      flags,
      hasClose: opts.close ?? false,
      anonVma: NIL,
      chain: [],
      attached,
      lockSeq: -1,
      readers: 0,
    };
    if (attached) m.vmas = [...m.vmas, id].sort((a, b) => this.s.vmas[a]!.start - this.s.vmas[b]!.start);
    return id;
  }

  /**
   * A new AVC linking vma to anon_vma: prepended to the VMA's chain
   * (anon_vma_chain_assign) and inserted into the anon_vma's tree keyed by
   * the VMA's current [pgoff, pgoff + pages - 1], after every AVC whose
   * cachedStart <= the key (equal starts in insertion order, §1.4).
   * Counters are not touched (see fillCounters). Returns the AVC id.
   */
  link(vmaId: Id, avId: Id, opts: LinkOpts = {}): Id {
    const v = this.vmaOf(vmaId);
    const a = this.anon(avId);
    const id = this.s.nextId.avc++;
    const start = v.pgoff;
    const last = v.pgoff + vmaPages(v) - 1;
    const inTree = opts.inTree ?? true;
    this.s.avcs[id] = { id, vma: vmaId, anonVma: avId, inTree, cachedStart: start, cachedLast: last };
    v.chain = [id, ...v.chain];
    if (inTree) {
      let i = 0;
      while (i < a.tree.length && this.s.avcs[a.tree[i]!]!.cachedStart <= start) i++;
      a.tree = [...a.tree.slice(0, i), id, ...a.tree.slice(i)];
    }
    return id;
  }

  /** Link vma to each anon_vma in turn, so the chain ends up as the reverse of `avIds` (head = last). */
  linkAll(vmaId: Id, avIds: Id[]): Id[] {
    return avIds.map((a) => this.link(vmaId, a));
  }

  /** vma->anon_vma = avId (NIL to clear). */
  setAnon(vmaId: Id, avId: Id): this {
    this.vmaOf(vmaId).anonVma = avId;
    return this;
  }

  /** A new folio (not mapped until pte()). */
  folio(opts: FolioOpts = {}): Id {
    const id = this.s.nextId.folio++;
    const nrPages = opts.nrPages ?? 1;
    const all = (1 << nrPages) - 1;
    const exclusive = opts.exclusive === true ? all : opts.exclusive === false || opts.exclusive === undefined ? 0 : opts.exclusive;
    this.s.folios[id] = {
      id,
      anonVma: opts.anonVma ?? NIL,
      index: opts.index ?? 0,
      nrPages,
      mapcount: opts.mapcount ?? 0,
      exclusive,
      pinned: opts.pinned ?? false,
      locked: opts.locked ?? NIL,
      data: opts.data ?? zeroPages(nrPages),
    };
    return id;
  }

  /** Map page `page` of mm `mmId` to folio `folioId` (or ZERO_PAGE); adds to the mapcount unless told not to. */
  pte(mmId: Id, page: number, folioId: Id, opts: PteOpts = {}): this {
    const m = this.mmOf(mmId);
    m.ptes = withPte(m.ptes, page, { folio: folioId, sub: opts.sub ?? 0, writable: opts.writable ?? true });
    if (folioId !== ZERO_PAGE && (opts.account ?? true)) {
      const f = this.s.folios[folioId];
      if (f === undefined) throw new Error(`ScenarioBuilder.pte: no folio ${folioId}`);
      f.mapcount++;
    }
    return this;
  }

  /** Clear the PTE at page of mm; subtracts one from the folio's mapcount unless told not to. */
  unpte(mmId: Id, page: number, opts: { account?: boolean } = {}): this {
    const m = this.mmOf(mmId);
    const pte = m.ptes[page];
    if (pte === undefined) return this;
    m.ptes = withPte(m.ptes, page, undefined);
    const f = this.s.folios[pte.folio];
    if (f !== undefined && (opts.account ?? true)) f.mapcount--;
    return this;
  }

  /** Delete a folio (freed once unmapped). */
  dropFolio(folioId: Id): this {
    delete this.s.folios[folioId];
    return this;
  }

  /**
   * Remove a VMA: out of its mm's list and the VMA table, each of its AVCs out
   * of its tree and the AVC table. PTEs, counters and anon_vmas are left
   * alone (use unpte, fillCounters, free).
   */
  removeVma(vmaId: Id): this {
    const v = this.vmaOf(vmaId);
    for (const id of v.chain) {
      const c = this.s.avcs[id];
      const a = c === undefined ? undefined : this.s.anonVmas[c.anonVma];
      if (a !== undefined) a.tree = a.tree.filter((x) => x !== id);
      delete this.s.avcs[id];
    }
    const m = this.s.mms[v.mm];
    if (m !== undefined) m.vmas = m.vmas.filter((x) => x !== vmaId);
    delete this.s.vmas[vmaId];
    return this;
  }

  /** Remove an mm with its PTEs (mapcounts decremented) and its VMAs (removeVma). */
  removeMm(mmId: Id): this {
    const m = this.mmOf(mmId);
    for (const page of ptePages(m.ptes)) this.unpte(mmId, page);
    for (const v of [...m.vmas]) this.removeVma(v);
    delete this.s.mms[mmId];
    return this;
  }

  /** Mark an anon_vma freed (a tombstone). */
  free(avId: Id): this {
    this.anon(avId).freed = true;
    return this;
  }

  /** Record a kernel assert by name. */
  warn(name: string): this {
    if (!this.s.warnings.includes(name)) this.s.warnings.push(name);
    return this;
  }

  /** Record a use-after-free access. */
  uaf(what: string): this {
    if (!this.s.uaf.includes(what)) this.s.uaf.push(what);
    return this;
  }

  /** Set every non-freed anon_vma's counters to their I6 values (see fillCounters). */
  fillCounters(): this {
    fillCounters(this.s);
    return this;
  }

  /** Override some counters of one anon_vma (after fillCounters, to build an inconsistent state). */
  setCounters(avId: Id, c: Partial<Counters>): this {
    Object.assign(this.anon(avId), c);
    return this;
  }

  /** A deep copy of the state; the builder can go on. */
  /** Processes whose reference view a test set with user(). */
  private userSet = new Set<Id>();

  /** Set what the reference model says process mmId reads at page (undefined: unmapped); see models/mm/user.ts. */
  user(mmId: Id, page: number, value: number | undefined): this {
    const m = this.s.mms[mmId]!;
    const user = m.user.slice();
    if (value === undefined) delete user[page];
    else user[page] = value;
    m.user = user;
    this.userSet.add(mmId);
    return this;
  }

  /**
   * The state. A process whose reference view was not set with user() gets
   * the view its page tables give (what it reads now), so that a state built
   * for another property holds user-view.
   */
  build(): State {
    const s = structuredClone(this.s);
    for (const key in s.mms) {
      const m = s.mms[key]!;
      if (this.userSet.has(m.id)) continue;
      const user: number[] = [];
      for (const id of m.vmas) {
        const v = s.vmas[id];
        if (v === undefined) continue;
        for (let p = v.start; p < v.end; p++) {
          const x = kernelRead(s, m, p);
          if (x !== undefined && !Number.isNaN(x)) user[p] = x;
        }
      }
      m.user = user;
    }
    return s;
  }

  private mmOf(id: Id) {
    const m = this.s.mms[id];
    if (m === undefined) throw new Error(`ScenarioBuilder: no mm ${id}`);
    return m;
  }

  private vmaOf(id: Id) {
    const v = this.s.vmas[id];
    if (v === undefined) throw new Error(`ScenarioBuilder: no vma ${id}`);
    return v;
  }

  private anon(id: Id) {
    const a = this.s.anonVmas[id];
    if (a === undefined) throw new Error(`ScenarioBuilder: no anon_vma ${id}`);
    return a;
  }
}

/**
 * Set refcount, num_children and num_active_vmas of every non-freed anon_vma
 * of s (in place) to the values I6 derives from the structure (§7.3), so a
 * hand-built state is consistent. Returns s.
 */
export function fillCounters(s: State): State {
  const want = new Map<Id, Counters>();
  for (const a of Object.values(s.anonVmas)) if (!a.freed) want.set(a.id, i6Counters(s, a.id));
  for (const [id, c] of want) Object.assign(s.anonVmas[id]!, c);
  return s;
}

/** Override some counters of one anon_vma of s (in place). Returns s. */
export function setCounters(s: State, avId: Id, c: Partial<Counters>): State {
  const a = s.anonVmas[avId];
  if (a === undefined) throw new Error(`setCounters: no anon_vma ${avId}`);
  Object.assign(a, c);
  return s;
}

export interface WorkedExample {
  s: State;
  /** Process ids P0..P3 (the parent P and the children C1, C2, C3). */
  P: Id[];
  /** The VMAs Vp, V1, V2, V3 (NIL once removed or before created). */
  Vp: Id;
  V1: Id;
  V2: Id;
  V3: Id;
  R: Id;
  A1: Id;
  A2: Id;
  /** F0: faulted by P at page 1 before the first fork, then shared by every child (anon_vma R). */
  F0: Id;
  /** F1: faulted by C2 at page 2 after step 3 (anon_vma A2), shared with C3 at step 5; NIL before. */
  F1: Id;
}

/**
 * The state after step `step` (1..7) of the worked example of
 * kernel-semantics §9: P faults [0,4), forks C1, C1 forks C2, C1 unmaps,
 * C2 forks C3 (reusing A1), C2 exits, C3 unmaps. Every VMA is [0,4) with
 * pgoff 0. Counters are filled from the structure (fillCounters), so the
 * digest's values can be checked against them. Ids: P0..P3, Vp=V0, V1..V3,
 * R=A0, A1, A2, F0, F1.
 */
export function workedExample(step: 1 | 2 | 3 | 4 | 5 | 6 | 7): WorkedExample {
  const b = new ScenarioBuilder();
  const P = [b.mm()];
  const R = b.anonVma();
  const Vp = b.vma(P[0]!, { start: 0, end: 4 });
  b.link(Vp, R);
  b.setAnon(Vp, R);
  const F0 = b.folio({ anonVma: R, index: 1, exclusive: step === 1 });
  b.pte(P[0]!, 1, F0, { writable: step === 1 });
  const out: WorkedExample = { s: b.s, P, Vp, V1: NIL, V2: NIL, V3: NIL, R, A1: NIL, A2: NIL, F0, F1: NIL };
  if (step >= 2) {
    // C1 = P1: anon_vma_fork: V1 = [A1, R].
    P.push(b.mm({ parent: P[0]! }));
    out.A1 = b.anonVma({ parent: R });
    out.V1 = b.vma(P[1]!, { start: 0, end: 4 });
    b.linkAll(out.V1, [R, out.A1]);
    b.setAnon(out.V1, out.A1);
    b.pte(P[1]!, 1, F0, { writable: false });
  }
  if (step >= 3) {
    // C2 = P2 forked from C1: V2 = [A2, R, A1]; then C2 write-faults page 2.
    P.push(b.mm({ parent: P[1]! }));
    out.A2 = b.anonVma({ parent: out.A1 });
    out.V2 = b.vma(P[2]!, { start: 0, end: 4 });
    b.linkAll(out.V2, [out.A1, R, out.A2]);
    b.setAnon(out.V2, out.A2);
    b.pte(P[2]!, 1, F0, { writable: false });
    out.F1 = b.folio({ anonVma: out.A2, index: 2, exclusive: step < 5 });
    b.pte(P[2]!, 2, out.F1, { writable: step < 5 });
  }
  if (step >= 4) {
    // C1 unmaps V1.
    b.unpte(P[1]!, 1);
    b.removeVma(out.V1);
    out.V1 = NIL;
  }
  if (step >= 5) {
    // C3 = P3 forked from C2: reuses A1; V3 = [A1, R, A2].
    P.push(b.mm({ parent: P[2]! }));
    out.V3 = b.vma(P[3]!, { start: 0, end: 4 });
    b.linkAll(out.V3, [out.A2, R, out.A1]);
    b.setAnon(out.V3, out.A1);
    b.pte(P[3]!, 1, F0, { writable: false });
    b.pte(P[3]!, 2, out.F1, { writable: false });
  }
  if (step >= 6) {
    // C2 exits.
    b.removeMm(P[2]!);
    out.V2 = NIL;
  }
  if (step >= 7) {
    // C3 unmaps V3: A1 and A2 are freed, F1 with its last mapping.
    b.unpte(P[3]!, 1);
    b.unpte(P[3]!, 2);
    b.dropFolio(out.F1);
    out.F1 = NIL;
    b.removeVma(out.V3);
    out.V3 = NIL;
    b.free(out.A1).free(out.A2);
  }
  b.fillCounters();
  out.s = b.build();
  return out;
}

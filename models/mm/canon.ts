// Canonical encoding of a state (DESIGN.md §5): ids of mms, VMAs, AVCs,
// anon_vmas, folios and memory contents are renamed in a fixed traversal order, so states
// that differ only in allocation order encode alike; processes with the same
// shape are ordered by that shape, so a permutation of interchangeable
// processes encodes alike too. Every modelled field is encoded, so states
// that differ in one encode differently. Ties between processes of equal
// shape fall back to id order: the encoding may then miss a symmetry, which
// costs states but never soundness.
//
// Tables are scanned by id up to s.nextId (every id of a table is below its
// counter: ids come only from those counters), not with for-in, which costs
// ten times more on integer keys.
import { opInts, type SyscallOp } from './ops.ts';
import { forEachThread, vmaWriteLocked, NIL, procOfThread, procThreads, threadIndex, USER_SWAPPED, USER_ZERO, WALKER_BASE, WALKER_CODE, ZERO_PAGE, type Id, type LockClass, type Mm, type Pte, type State, type Thread, type Vma } from './state.ts';

/** A deterministic 32-bit string hash (FNV-1a): stable across threads, unlike an intern table. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

// The shapes of the processes being ordered, one after the other in a
// reused buffer (shapeAt[i], shapeEnd[i] delimit process i's).
let shapes = new Int32Array(256);
let shapesLen = 0;
const shapeAt: number[] = [];
const shapeEnd: number[] = [];

function shapePut(x: number): void {
  if (shapesLen === shapes.length) {
    const bigger = new Int32Array(shapes.length * 2);
    bigger.set(shapes);
    shapes = bigger;
  }
  shapes[shapesLen++] = x;
}

/**
 * A page without a PTE or mapping the zero page. There a swapped-out page of
 * the reference model reads as zeros would (the model keeps no swap, so a
 * reclaimed page can only come back by a new fault): the two encode alike.
 */
const readsZero = (pte: Pte | undefined): boolean => pte === undefined || pte.folio === ZERO_PAGE;

/** Append the id-free shape of a process, used to order interchangeable processes. */
function shape(s: State, m: Mm): void {
  shapePut(m.vmas.length);
  for (const id of m.vmas) {
    const v = s.vmas[id]!;
    shapePut(v.start);
    shapePut(v.end);
    shapePut(v.pgoff);
    shapePut(v.flags | (v.hasClose ? 256 : 0));
    shapePut(v.anonVma === NIL ? 0 : 1);
    shapePut(v.chain.length);
  }
  const ptes = m.ptes;
  for (let page = 0; page < ptes.length; page++) {
    const pte = ptes[page];
    if (pte === undefined) continue;
    const f = pte.folio === ZERO_PAGE ? undefined : s.folios[pte.folio];
    shapePut(page);
    shapePut(pte.writable ? 1 : 0);
    shapePut(pte.sub);
    shapePut(f === undefined ? -1 : f.mapcount);
    shapePut(f === undefined ? -1 : f.index);
  }
  shapePut(m.hasPinned ? 1 : 0);
  // The reference view by kind only (unmapped, zero, swapped, a content): content ids are names.
  // (Entries only: an array's length counts holes a delete left.)
  const user = m.user;
  for (let page = 0; page < user.length; page++) {
    const x = user[page];
    if (x === undefined) continue;
    shapePut(page);
    shapePut(x > USER_ZERO ? 1 : x === USER_SWAPPED && readsZero(m.ptes[page]) ? USER_ZERO : x);
  }
  shapePut(-1);
  procThreads(s, m.id, (t) => {
    shapePut(threadIndex(t.id));
    shapePut(hashString(t.pc));
    shapePut(t.op === undefined ? 0 : hashString(t.op.kind));
  });
}

/** Compare the shapes of processes i and j (positions in the order being sorted). */
function compareShapes(i: number, j: number): number {
  const a = shapeAt[i]!;
  const b = shapeAt[j]!;
  const la = shapeEnd[i]! - a;
  const lb = shapeEnd[j]! - b;
  const n = Math.min(la, lb);
  for (let k = 0; k < n; k++) if (shapes[a + k] !== shapes[b + k]) return shapes[a + k]! - shapes[b + k]!;
  return la - lb;
}

/** The canonical order of processes: by shape, then by id. */
export function canonicalMmOrder(s: State): Id[] {
  const ids: Id[] = [];
  for (let id = 0; id < s.nextId.mm; id++) if (s.mms[id] !== undefined) ids.push(id);
  const n = ids.length;
  if (n <= 1) return ids;
  shapesLen = 0;
  const pos: number[] = [];
  for (let i = 0; i < n; i++) {
    shapeAt[i] = shapesLen;
    shape(s, s.mms[ids[i]!]!);
    shapeEnd[i] = shapesLen;
    pos.push(i);
  }
  // Insertion sort of the few processes; ids ascend, so ties keep id order.
  for (let i = 1; i < n; i++) {
    const p = pos[i]!;
    let j = i - 1;
    while (j >= 0 && compareShapes(pos[j]!, p) > 0) {
      pos[j + 1] = pos[j]!;
      j--;
    }
    pos[j + 1] = p;
  }
  const out: Id[] = new Array<Id>(n);
  for (let i = 0; i < n; i++) out[i] = ids[pos[i]!]!;
  return out;
}

/** A map from ids (small non-negative integers) to canonical indices: a Map without hashing. */
class IdIndex {
  private idx = new Int32Array(64);
  private bound = 0;
  size = 0;
  /** Empty the map; ids at or above bound are never set. */
  reset(bound: number): void {
    if (bound > this.idx.length) this.idx = new Int32Array(Math.max(bound, this.idx.length * 2));
    this.idx.fill(-1, 0, Math.max(bound, this.bound));
    this.bound = bound;
    this.size = 0;
  }
  has(id: Id): boolean {
    return id >= 0 && id < this.bound && this.idx[id]! >= 0;
  }
  /** The index of id, or undefined. */
  get(id: Id): number | undefined {
    if (id < 0 || id >= this.bound) return undefined;
    const i = this.idx[id]!;
    return i >= 0 ? i : undefined;
  }
  set(id: Id, i: number): void {
    if (id < 0) throw new Error(`model bug: negative id ${id}`);
    if (id >= this.bound) this.grow(id + 1);
    if (this.idx[id]! < 0) this.size++;
    this.idx[id] = i;
  }
  private grow(bound: number): void {
    const old = this.idx;
    if (bound > old.length) {
      this.idx = new Int32Array(Math.max(bound, old.length * 2));
      this.idx.set(old.subarray(0, this.bound));
    }
    this.idx.fill(-1, this.bound, bound);
    this.bound = bound;
  }
}

// The scratch of encodeState, reused from call to call (it is not reentrant):
// the canonical index of each mm, VMA, AVC, anon_vma and folio id, the naming
// orders, and the output buffer.
const mmIdx = new IdIndex();
const vmaIdx = new IdIndex();
const avcIdx = new IdIndex();
const avIdx = new IdIndex();
const avOrder: Id[] = [];
const folioIdx = new IdIndex();
const folioOrder: Id[] = [];
const detached: Vma[] = [];
/** Content ids by first appearance: in the processes' reference views, then in mapped folio pages. */
const contentIdx = new IdIndex();
/** Per folio id, a mask of its pages some PTE maps: the contents of the others cannot be read back and are not encoded. */
let mappedSubs = new Int32Array(64);
let out = new Int32Array(1024);
let len = 0;

function put(x: number): void {
  if (len === out.length) {
    const bigger = new Int32Array(out.length * 2);
    bigger.set(out);
    out = bigger;
  }
  out[len++] = x;
}

function nameAv(s: State, id: Id): void {
  if (id !== NIL && !avIdx.has(id) && s.anonVmas[id] !== undefined) {
    avIdx.set(id, avOrder.length);
    avOrder.push(id);
  }
}

function nameFolio(id: Id): void {
  if (id >= 0 && !folioIdx.has(id)) {
    folioIdx.set(id, folioOrder.length);
    folioOrder.push(id);
  }
}

function nameContent(x: number | undefined): void {
  if (x !== undefined && x > USER_ZERO && !contentIdx.has(x)) contentIdx.set(x, contentIdx.size + 1);
}

/** A content value canonically: zero and swapped as they are, a content id by its name. */
const contentRef = (x: number): number => (x > USER_ZERO ? (contentIdx.get(x) ?? -3) : x);

const ref = (map: IdIndex, id: Id): number => (id < 0 ? id : (map.get(id) ?? -3));
/** Walker thread ids in id order (their canonical names are 1000 + position). */
const walkerOrder: Id[] = [];
function thread(id: Id): number {
  if (id < 0) return id;
  if (id >= WALKER_BASE) {
    const i = walkerOrder.indexOf(id);
    return i >= 0 ? 1000 + i : 2000 + id;
  }
  // A syscall thread: its process's canonical index, its own index within the process kept.
  const proc = procOfThread(id);
  return (mmIdx.get(proc) ?? 1000 + proc) + (id - proc);
}
const LOCK_CLASS_CODE: Record<LockClass, number> = { mmap_lock: 0, folio_lock: 1, anon_vma_rwsem: 2, page_table_lock: 3, ptl: 4, vma_lock: 5 };

/** The canonical id of the object a lock belongs to. */
function lockRef(cls: LockClass, id: Id): number {
  if (cls === 'folio_lock') return ref(folioIdx, id);
  if (cls === 'anon_vma_rwsem') return ref(avIdx, id);
  if (cls === 'vma_lock') return ref(vmaIdx, id);
  return ref(mmIdx, id);
}

/** The threads in canonical order: syscall threads by their process's canonical index, then walkers by id. */
const threadOrder: Thread[] = [];
function orderThreads(s: State): void {
  threadOrder.length = 0;
  walkerOrder.length = 0;
  forEachThread(s, (t) => {
    threadOrder.push(t);
    if (t.walker !== undefined) walkerOrder.push(t.id);
  });
  if (threadOrder.length > 1) threadOrder.sort((a, b) => (a.walker === undefined ? thread(a.id) : a.id) - (b.walker === undefined ? thread(b.id) : b.id));
}

/** A VMA's per-VMA lock: write-locked (its seq equals its mm's; the numbers are not canonical) and its readers. */
const vmaLockCode = (v: Vma, m: Mm | undefined): number => (m !== undefined && vmaWriteLocked(v, m) ? 1 : 0) + 2 * v.readers;

/** FNV-1a over one integer. */
const mixInt = (h: number, x: number): number => Math.imul(h ^ x, 0x01000193);

/** A syscall in flight, without its process: a hash of its kind and fields (no string, no cache). */
let opAcc = 0;
const mixOp = (x: number): void => {
  opAcc = mixInt(opAcc, x);
};
function opHash(op: SyscallOp): number {
  opAcc = 0x811c9dc5;
  opInts(op, mixOp);
  return opAcc | 0;
}

function putThreads(): void {
  put(threadOrder.length);
  for (const t of threadOrder) {
    put(t.walker === undefined ? 0 : WALKER_CODE[t.walker]);
    // A walker works on its folio, not on the mapping it was named by (its proc is for display only).
    put(t.walker === undefined ? ref(mmIdx, t.proc) : NIL);
    put(t.walker === undefined ? threadIndex(t.id) : 0);
    put(t.op === undefined ? 0 : opHash(t.op));
    put(hashString(t.pc));
    put(t.allocs);
    put(t.failAt);
    put(t.held.length);
    for (const h of t.held) {
      put(LOCK_CLASS_CODE[h.cls]);
      put(lockRef(h.cls, h.id));
      put(h.write ? 1 : 0);
    }
    if (t.queued === undefined) put(-1);
    else {
      put(LOCK_CLASS_CODE[t.queued.cls]);
      put(lockRef(t.queued.cls, t.queued.id));
    }
    put(t.mms.length);
    for (const id of t.mms) put(ref(mmIdx, id));
    put(t.vmas.length);
    for (const id of t.vmas) put(ref(vmaIdx, id));
    put(t.anonVmas.length);
    for (const id of t.anonVmas) put(ref(avIdx, id));
    put(t.folios.length);
    for (const id of t.folios) put(ref(folioIdx, id));
    put(t.nums.length);
    for (const n of t.nums) put(n);
    const seen = t.seen.map((p) => ref(mmIdx, p.mm) * 64 + p.sub).sort((a, b) => a - b);
    put(seen.length);
    for (const x of seen) put(x);
  }
}

/** The canonical encoding of s as a flat Int32Array (a copy the caller owns). */
export function encodeState(s: State): Int32Array {
  return out.slice(0, encodeInto(s));
}

/** The same in the encoder's own buffer: valid until its next call (Model.encodeScratch). */
export function encodeStateScratch(s: State): Int32Array {
  return out.subarray(0, encodeInto(s));
}

/**
 * Encode s into `out`; returns its length. In passes, each a function of its
 * own: V8 compiles the passes apart, faster than one large function, and a
 * deoptimisation in one recompiles only that pass.
 */
function encodeInto(s: State): number {
  const mmOrder = canonicalMmOrder(s);
  resetNames(s, mmOrder);
  nameRecords(s, mmOrder);
  putGlobals(s);
  putMms(s, mmOrder);
  putDetached(s);
  putAnonVmas(s);
  putFolios(s);
  putThreads();
  return len;
}

/** Empty the scratch; name the processes in canonical order, and the contents of their reference views. */
function resetNames(s: State, mmOrder: readonly Id[]): void {
  const next = s.nextId;
  mmIdx.reset(next.mm);
  vmaIdx.reset(next.vma);
  avcIdx.reset(next.avc);
  avIdx.reset(next.anonVma);
  avOrder.length = 0;
  folioIdx.reset(next.folio);
  folioOrder.length = 0;
  detached.length = 0;
  contentIdx.reset(next.content);
  if (mappedSubs.length < next.folio) mappedSubs = new Int32Array(Math.max(next.folio, mappedSubs.length * 2));
  mappedSubs.fill(0, 0, next.folio);
  len = 0;
  for (let i = 0; i < mmOrder.length; i++) mmIdx.set(mmOrder[i]!, i);
  for (const mmId of mmOrder) {
    const user = s.mms[mmId]!.user;
    for (let page = 0; page < user.length; page++) nameContent(user[page]);
  }
}

/** Name every record in traversal order (the canonical ids). */
function nameRecords(s: State, mmOrder: readonly Id[]): void {
  const next = s.nextId;
  // Traversal: processes in canonical order, their VMAs by address, each
  // VMA's chain in list order, then PTEs by page.
  for (const mmId of mmOrder) {
    const m = s.mms[mmId]!;
    for (const vId of m.vmas) {
      vmaIdx.set(vId, vmaIdx.size);
      const v = s.vmas[vId]!;
      nameAv(s, v.anonVma);
      for (const cId of v.chain) {
        avcIdx.set(cId, avcIdx.size);
        nameAv(s, s.avcs[cId]!.anonVma);
      }
    }
    const ptes = m.ptes;
    for (let page = 0; page < ptes.length; page++) {
      const pte = ptes[page];
      if (pte === undefined) continue;
      nameFolio(pte.folio);
      if (pte.folio < 0) continue;
      mappedSubs[pte.folio] = mappedSubs[pte.folio]! | (1 << pte.sub);
      nameContent(s.folios[pte.folio]?.data[pte.sub]);
    }
  }
  // What threads in flight refer to (a walker's folio may be mapped nowhere any more).
  orderThreads(s);
  for (const t of threadOrder) {
    for (const id of t.anonVmas) nameAv(s, id);
    for (const id of t.folios) nameFolio(id);
  }
  // Detached VMAs (none between syscalls in a correct model) and their AVCs.
  for (let id = 0; id < next.vma; id++) {
    const v = s.vmas[id];
    if (v === undefined) continue;
    if (!vmaIdx.has(v.id)) {
      vmaIdx.set(v.id, vmaIdx.size);
      for (const cId of v.chain) avcIdx.set(cId, avcIdx.size);
    }
    if (!v.attached) detached.push(v);
  }
  for (let id = 0; id < next.avc; id++) if (s.avcs[id] !== undefined && !avcIdx.has(id)) avcIdx.set(id, avcIdx.size);
  // anon_vmas reached through parent/root links, then any left (leaked ones),
  // then folios not mapped anywhere. Freed anon_vmas that nothing refers to
  // are dropped: nothing can observe them.
  for (let i = 0; i < avOrder.length; i++) {
    const a = s.anonVmas[avOrder[i]!]!;
    nameAv(s, a.parent);
    nameAv(s, a.root);
  }
  for (let id = 0; id < next.folio; id++) {
    const f = s.folios[id];
    if (f !== undefined && (f.mapcount > 0 || folioIdx.has(f.id))) nameAv(s, f.anonVma);
  }
  for (let id = 0; id < next.anonVma; id++) {
    const a = s.anonVmas[id];
    if (a !== undefined && !a.freed) nameAv(s, id);
  }
  for (let i = 0; i < avOrder.length; i++) {
    const a = s.anonVmas[avOrder[i]!]!;
    nameAv(s, a.parent);
    nameAv(s, a.root);
  }
  for (let id = 0; id < next.folio; id++) if (s.folios[id] !== undefined) nameFolio(id);
}

/** The budgets, warnings and use-after-free reports. */
function putGlobals(s: State): void {
  put(s.budgets.enomem);
  put(s.budgets.walkers ?? 0);
  put(s.warnings.length);
  for (const w of s.warnings) put(hashString(w));
  put(s.uaf.length);
  for (const u of s.uaf) put(hashString(u));
}

/** Each process: its locks, its VMAs with their chains, its PTEs, its reference view. */
function putMms(s: State, mmOrder: readonly Id[]): void {
  put(mmOrder.length);
  for (const mmId of mmOrder) {
    const m = s.mms[mmId]!;
    put(m.mmapLock.writer === NIL ? -1 : thread(m.mmapLock.writer));
    put(m.mmapLock.readers);
    put(thread(m.pageTableLock));
    put(thread(m.ptl));
    put(m.hasPinned ? 1 : 0);
    put(m.vmas.length);
    for (const vId of m.vmas) {
      const v = s.vmas[vId]!;
      put(v.start);
      put(v.end);
      put(v.pgoff);
      put(v.flags);
      put(v.hasClose ? 1 : 0);
      put(v.attached ? 1 : 0);
      put(vmaLockCode(v, m));
      put(ref(avIdx, v.anonVma));
      put(v.chain.length);
      for (const cId of v.chain) {
        const a = s.avcs[cId]!;
        put(ref(avIdx, a.anonVma));
        put(a.inTree ? 1 : 0);
        put(a.cachedStart);
        put(a.cachedLast);
      }
    }
    const nAt = len;
    put(0);
    let n = 0;
    const ptes = m.ptes;
    for (let page = 0; page < ptes.length; page++) {
      const pte = ptes[page];
      if (pte === undefined) continue;
      put(page);
      put(ref(folioIdx, pte.folio));
      put(pte.sub);
      put(pte.writable ? 1 : 0);
      n++;
    }
    out[nAt] = n;
    const uAt = len;
    put(0);
    let u = 0;
    const user = m.user;
    for (let page = 0; page < user.length; page++) {
      const x = user[page];
      if (x === undefined) continue;
      put(page);
      put(x === USER_SWAPPED && readsZero(ptes[page]) ? USER_ZERO : contentRef(x));
      u++;
    }
    out[uAt] = u;
  }
}

/** Detached VMAs (none between syscalls in a correct model). */
function putDetached(s: State): void {
  put(detached.length);
  for (const v of detached) {
    put(ref(vmaIdx, v.id));
    put(ref(mmIdx, v.mm));
    put(v.start);
    put(v.end);
    put(v.pgoff);
    put(v.flags);
    put(vmaLockCode(v, s.mms[v.mm]));
    put(ref(avIdx, v.anonVma));
    put(v.chain.length);
    for (const cId of v.chain) {
      put(ref(avIdx, s.avcs[cId]!.anonVma));
      put(s.avcs[cId]!.inTree ? 1 : 0);
    }
  }
}

/** The anon_vmas in naming order. */
function putAnonVmas(s: State): void {
  put(avOrder.length);
  for (const id of avOrder) {
    const a = s.anonVmas[id]!;
    put(ref(avIdx, a.root));
    put(ref(avIdx, a.parent));
    put(a.refcount);
    put(a.numChildren);
    put(a.numActiveVmas);
    put(a.freed ? 1 : 0);
    put(a.rwsem.writer === NIL ? -1 : thread(a.rwsem.writer));
    put(a.rwsem.readers);
    put(a.tree.length);
    for (const cId of a.tree) put(ref(avcIdx, cId));
    if (a.ext !== undefined) {
      const keys = Object.keys(a.ext).sort();
      put(keys.length);
      for (const k of keys) {
        put(hashString(k));
        put(a.ext[k]!);
      }
    } else put(0);
  }
}

/** The folios in naming order, with the contents of their mapped pages. */
function putFolios(s: State): void {
  put(folioOrder.length);
  for (const id of folioOrder) {
    const f = s.folios[id]!;
    put(ref(avIdx, f.anonVma));
    put(f.index);
    put(f.nrPages);
    put(f.mapcount);
    put(f.exclusive);
    put(f.pinned ? 1 : 0);
    put(thread(f.locked));
    const mapped = mappedSubs[id]!;
    for (let sub = 0; sub < f.nrPages; sub++) put((mapped & (1 << sub)) !== 0 ? contentRef(f.data[sub] ?? USER_ZERO) : USER_ZERO);
  }
}

// The mm model's compact serialisation (Model.pack/unpack, src/engine/pack.ts):
// how a state crosses a thread (or machine) boundary and how the frontier is
// kept between levels. Every number is a zigzag varint, so a small state is a
// few hundred bytes at most, where v8.serialize takes several times that.
// The state is kept exactly, ids as they are (not canonically renamed): a
// trace is rebuilt by replaying action indices, which depend on the ids.
//
// unpack builds every record as a literal checked against All<T> (cow.ts),
// so a field added to a record type and missed here is a compile-time error;
// the round-trip test (test/transitions.test.ts) catches a field written in
// the wrong order.
import type { All } from './cow.ts';
import { opFromInts, opInts, type SyscallOp } from './ops.ts';
import { emptyPageTable, emptyRecords, emptyUserView, forEachThread, threadKey, WALKER_CODE, type AnonVma, type Avc, type Budgets, type Folio, type HeldLock, type Id, type LockClass, type LockState, type Mm, type Pte, type State, type SyscallResult, type Thread, type Vma, type WalkerKind } from './state.ts';

// ---------------------------------------------------------------------------
// Writing.

let buf = new Uint8Array(4096);
let pos = 0;

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  const bigger = new Uint8Array(Math.max(buf.length * 2, pos + n));
  bigger.set(buf.subarray(0, pos));
  buf = bigger;
}

/** A signed integer as a zigzag varint (ids may be NIL = -1 or ZERO_PAGE = -2). */
function int(x: number): void {
  ensure(5);
  let z = (x << 1) ^ (x >> 31);
  while ((z & ~0x7f) !== 0) {
    buf[pos++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  buf[pos++] = z;
}

const bool = (b: boolean): void => int(b ? 1 : 0);

function str(s: string): void {
  int(s.length);
  for (let i = 0; i < s.length; i++) int(s.charCodeAt(i));
}

function ints(a: readonly number[]): void {
  int(a.length);
  for (let i = 0; i < a.length; i++) int(a[i]!);
}

function lock(l: LockState): void {
  int(l.writer);
  int(l.readers);
}

const LOCK_CLASSES: readonly LockClass[] = ['mmap_lock', 'folio_lock', 'vma_lock', 'anon_vma_rwsem', 'page_table_lock', 'ptl'];
/** The walker kinds by WALKER_CODE (index 0: a syscall thread). */
const WALKERS: readonly (WalkerKind | undefined)[] = [undefined];
for (const [kind, code] of Object.entries(WALKER_CODE)) (WALKERS as (WalkerKind | undefined)[])[code] = kind as WalkerKind;

/** Count the defined entries of an id-keyed table, then write each with f (ids ascending). */
function table<T>(t: Record<Id, T>, bound: number, f: (x: T) => void): void {
  let n = 0;
  for (let id = 0; id < bound; id++) if (t[id] !== undefined) n++;
  int(n);
  for (let id = 0; id < bound; id++) {
    const x = t[id];
    if (x !== undefined) f(x);
  }
}

/** A sparse array of numbers (holes skipped): its entry count, then page and value of each. */
function sparse(a: readonly (number | undefined)[]): void {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== undefined) n++;
  int(n);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (x === undefined) continue;
    int(i);
    int(x);
  }
}

function writeMm(m: Mm): void {
  int(m.id);
  int(m.parent);
  ints(m.vmas);
  sparse(m.user);
  const ptes = m.ptes;
  let n = 0;
  for (let page = 0; page < ptes.length; page++) if (ptes[page] !== undefined) n++;
  int(n);
  for (let page = 0; page < ptes.length; page++) {
    const p = ptes[page];
    if (p === undefined) continue;
    int(page);
    int(p.folio);
    int(p.sub);
    bool(p.writable);
  }
  lock(m.mmapLock);
  int(m.lockSeq);
  int(m.pageTableLock);
  int(m.ptl);
  bool(m.hasPinned);
}

function writeVma(v: Vma): void {
  int(v.id);
  int(v.mm);
  int(v.start);
  int(v.end);
  int(v.pgoff);
  int(v.flags);
  bool(v.hasClose);
  int(v.anonVma);
  ints(v.chain);
  bool(v.attached);
  int(v.lockSeq);
  int(v.readers);
}

function writeAnonVma(a: AnonVma): void {
  int(a.id);
  int(a.root);
  int(a.parent);
  int(a.refcount);
  int(a.numChildren);
  int(a.numActiveVmas);
  ints(a.tree);
  lock(a.rwsem);
  bool(a.freed);
  if (a.ext === undefined) int(-1);
  else {
    const keys = Object.keys(a.ext);
    int(keys.length);
    for (const k of keys) {
      str(k);
      int(a.ext[k]!);
    }
  }
}

function writeAvc(a: Avc): void {
  int(a.id);
  int(a.vma);
  int(a.anonVma);
  bool(a.inTree);
  int(a.cachedStart);
  int(a.cachedLast);
}

function writeFolio(f: Folio): void {
  int(f.id);
  int(f.anonVma);
  int(f.index);
  int(f.nrPages);
  int(f.mapcount);
  int(f.exclusive);
  bool(f.pinned);
  int(f.locked);
  ints(f.data);
}

function writeThread(t: Thread): void {
  int(t.id);
  int(t.proc);
  if (t.op === undefined) int(0);
  else {
    int(1);
    int(t.op.proc);
    int(t.op.thread ?? 0);
    opInts(t.op, int);
  }
  int(t.walker === undefined ? 0 : WALKER_CODE[t.walker]);
  str(t.pc);
  int(t.held.length);
  for (const h of t.held) {
    int(LOCK_CLASSES.indexOf(h.cls));
    int(h.id);
    bool(h.write);
  }
  if (t.queued === undefined) int(-1);
  else {
    int(LOCK_CLASSES.indexOf(t.queued.cls));
    int(t.queued.id);
  }
  int(t.allocs);
  int(t.failAt);
  ints(t.mms);
  ints(t.vmas);
  ints(t.anonVmas);
  ints(t.folios);
  ints(t.nums);
  int(t.seen.length);
  for (const p of t.seen) {
    int(p.mm);
    int(p.sub);
  }
}

/** The state as bytes (a fresh array the caller owns). */
export function packMmState(s: State): Uint8Array {
  return buf.slice(0, packInto(s));
}

/** The same in the packer's own buffer: valid until its next call (Model.packScratch). */
export function packMmStateScratch(s: State): Uint8Array {
  return buf.subarray(0, packInto(s));
}

/** Pack s into `buf`; returns its length. */
function packInto(s: State): number {
  pos = 0;
  const n = s.nextId;
  int(n.mm);
  int(n.vma);
  int(n.anonVma);
  int(n.avc);
  int(n.folio);
  int(n.walker);
  int(n.content);
  int(s.budgets.enomem);
  int(s.budgets.walkers ?? -1);
  int(s.budgets.threads ?? -1);
  int(s.warnings.length);
  for (const w of s.warnings) str(w);
  int(s.uaf.length);
  for (const u of s.uaf) str(u);
  if (s.result === undefined) int(0);
  else {
    int(1);
    int(s.result.proc);
    int(s.result.ret);
  }
  table(s.mms, n.mm, writeMm);
  table(s.vmas, n.vma, writeVma);
  table(s.anonVmas, n.anonVma, writeAnonVma);
  table(s.avcs, n.avc, writeAvc);
  table(s.folios, n.folio, writeFolio);
  let threads = 0;
  forEachThread(s, () => threads++);
  int(threads);
  forEachThread(s, writeThread);
  return pos;
}

// ---------------------------------------------------------------------------
// Reading.

let src: Uint8Array = new Uint8Array(0);
let at = 0;

function rint(): number {
  let z = 0;
  let shift = 0;
  for (;;) {
    const b = src[at++]!;
    z |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
  }
  return (z >>> 1) ^ -(z & 1);
}

const rbool = (): boolean => rint() !== 0;

function rstr(): string {
  const n = rint();
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(rint());
  return s;
}

/** A list of ints, packed as the model's own lists are (new Array(n) would make it holey: a second hidden class for every reader). */
function rints(): number[] {
  const n = rint();
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(rint());
  return out;
}

const rlock = (): LockState => ({ writer: rint(), readers: rint() }) satisfies All<LockState>;

function rtable<T extends { id: Id }>(read: () => T, key: (id: Id) => number = (id) => id): Record<number, T> {
  const out: Record<number, T> = {};
  const n = rint();
  for (let i = 0; i < n; i++) {
    const x = read();
    out[key(x.id)] = x;
  }
  return out;
}

function rsparse(): (number | undefined)[] {
  const out = emptyUserView();
  for (let n = rint(); n > 0; n--) {
    const i = rint();
    out[i] = rint();
  }
  return out;
}

function readMm(): Mm {
  const id = rint();
  const parent = rint();
  const vmas = rints();
  const user = rsparse();
  const ptes = emptyPageTable();
  const n = rint();
  for (let i = 0; i < n; i++) {
    const page = rint();
    ptes[page] = { folio: rint(), sub: rint(), writable: rbool() } satisfies All<Pte>;
  }
  return { id, parent, vmas, ptes, mmapLock: rlock(), lockSeq: rint(), pageTableLock: rint(), ptl: rint(), hasPinned: rbool(), user } satisfies All<Mm>;
}

const readVma = (): Vma =>
  ({
    id: rint(),
    mm: rint(),
    start: rint(),
    end: rint(),
    pgoff: rint(),
    flags: rint(),
    hasClose: rbool(),
    anonVma: rint(),
    chain: rints(),
    attached: rbool(),
    lockSeq: rint(),
    readers: rint(),
  }) satisfies All<Vma>;

function readExt(): Record<string, number> | undefined {
  const n = rint();
  if (n < 0) return undefined;
  const ext: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const k = rstr();
    ext[k] = rint();
  }
  return ext;
}

const readAnonVma = (): AnonVma =>
  ({
    id: rint(),
    root: rint(),
    parent: rint(),
    refcount: rint(),
    numChildren: rint(),
    numActiveVmas: rint(),
    tree: rints(),
    rwsem: rlock(),
    freed: rbool(),
    ext: readExt(),
  }) satisfies All<AnonVma>;

const readAvc = (): Avc =>
  ({ id: rint(), vma: rint(), anonVma: rint(), inTree: rbool(), cachedStart: rint(), cachedLast: rint() }) satisfies All<Avc>;

const readFolio = (): Folio =>
  ({
    id: rint(),
    anonVma: rint(),
    index: rint(),
    nrPages: rint(),
    mapcount: rint(),
    exclusive: rint(),
    pinned: rbool(),
    locked: rint(),
    data: rints(),
  }) satisfies All<Folio>;

function readHeld(): HeldLock[] {
  const n = rint();
  const out = emptyRecords<HeldLock>();
  for (let i = 0; i < n; i++) out.push({ cls: LOCK_CLASSES[rint()]!, id: rint(), write: rbool() } satisfies All<HeldLock>);
  return out;
}

function readSeen(): { mm: Id; sub: number }[] {
  const n = rint();
  const out = emptyRecords<{ mm: Id; sub: number }>();
  for (let i = 0; i < n; i++) out.push({ mm: rint(), sub: rint() });
  return out;
}

/** A thread's syscall as writeThread wrote it (thread 0's op has no thread field). */
function readOp(): SyscallOp {
  const proc = rint();
  const thread = rint();
  const op = opFromInts(proc, rint);
  if (thread > 0) op.thread = thread;
  return op;
}

function readQueued(): Thread['queued'] {
  const cls = rint();
  return cls < 0 ? undefined : { cls: LOCK_CLASSES[cls]!, id: rint() };
}

const readThread = (): Thread =>
  ({
    id: rint(),
    proc: rint(),
    op: rint() === 0 ? undefined : readOp(),
    walker: WALKERS[rint()],
    pc: rstr(),
    held: readHeld(),
    queued: readQueued(),
    allocs: rint(),
    failAt: rint(),
    mms: rints(),
    vmas: rints(),
    anonVmas: rints(),
    folios: rints(),
    nums: rints(),
    seen: readSeen(),
  }) satisfies All<Thread>;

/** The state packMmState wrote. */
export function unpackMmState(bytes: Uint8Array): State {
  src = bytes;
  at = 0;
  const nextId = { mm: rint(), vma: rint(), anonVma: rint(), avc: rint(), folio: rint(), walker: rint(), content: rint() } satisfies All<State['nextId']>;
  const enomem = rint();
  const walkers = rint();
  const threads = rint();
  const warnings: string[] = [];
  for (let i = rint(); i > 0; i--) warnings.push(rstr());
  const uaf: string[] = [];
  for (let i = rint(); i > 0; i--) uaf.push(rstr());
  const result = rint() === 0 ? undefined : ({ proc: rint(), ret: rint() } satisfies All<SyscallResult>);
  const s = {
    mms: rtable(readMm),
    vmas: rtable(readVma),
    anonVmas: rtable(readAnonVma),
    avcs: rtable(readAvc),
    folios: rtable(readFolio),
    nextId,
    // Every key present, as cow.ts copies budgets (one hidden class).
    budgets: { enomem, walkers: walkers < 0 ? undefined : walkers, threads: threads < 0 ? undefined : threads } satisfies All<Budgets>,
    threads: rtable(readThread, threadKey),
    warnings,
    uaf,
    result,
  } satisfies All<State>;
  if (at !== bytes.length) throw new Error(`unpackMmState: ${bytes.length - at} bytes left over (pack and unpack disagree)`);
  return s;
}

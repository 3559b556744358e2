// Partial-order reduction at lock granularity (issue 17, item 6): which of a
// state's enabled actions form a persistent set the explorer may expand
// alone (the ample set; src/engine/model.ts, Model.ample, says what the
// engine adds: the cycle proviso).
//
// Independence comes from the state's sharing structure. The records of a
// state fall into components: an mm with its VMAs and page table, the
// anon_vma trees its VMAs are chained to, the folios it maps and the
// anon_vmas their ->mapping names, closed under those links. A thread in
// flight belongs to the component of its process and of every record its
// locals or held locks name. Every kernel path reaches records only through
// these links (an rmap walk: folio -> anon_vma root -> AVCs -> VMAs -> page
// tables, kernel-semantics §2.12; a fork: the parent's VMAs and the
// anon_vmas they chain, §2.4, §2.5, §2.7; the locks of §6.2 all belong to an
// mm, a VMA, a folio or an anon_vma root), so two
// threads of different components touch disjoint records and their steps
// commute. Components never join: only a fork puts records of two
// processes in one component, and the child is new. Each property is a
// conjunction over components (each violation is about one component's
// records), so no visibility proviso is needed for them.
// test/por.test.ts checks this: the corpus bugs (all but B2, too slow at
// lock granularity) and the deadlock fixtures are found with the reduction
// on and off alike, and every action writes only its own component.
//
// The ample set is every enabled action of one component, taken only when:
//   - they are all steps of threads in flight (no syscall issue and no
//     walker start, which could begin an unbounded stretch of new work and
//     which draw on budgets the components share), so any violation of a
//     quiescent, end or deadlock property is reached by a mere reordering,
//     at the same depth;
//   - every thread in flight of the component can take its step now (none
//     blocked or queued on a lock): a deadlock found with the reduction off
//     is then found with it on (a thread left behind stays runnable, so no
//     state where everyone waits is skipped);
//   - no step creates a process (a fork's child counts against --procs,
//     which every component's fork issue reads).
//
// Failing that, inside one component: the step of a thread that holds its
// process's mmap_lock, alone, while the only other thing its
// component could do is queue the process's idle thread on that lock
// (mmapHolderAlone below, with its own argument). The component rule never
// defers a second thread of the same mm; this one does, where the kernel
// makes it wait.
import { NIL, forEachThread, procThreads, threadOf, type Id, type LockClass, type State, type Thread } from './state.ts';
import { opThread, type Op } from './ops.ts';
import { encodeState } from './canon.ts';

/** Union-find over the records that span components: mms, anon_vmas, folios. */
class Components {
  private parent = new Int32Array(64);
  private anonBase = 0;
  private folioBase = 0;

  reset(s: State): void {
    this.anonBase = s.nextId.mm;
    this.folioBase = this.anonBase + s.nextId.anonVma;
    const n = this.folioBase + s.nextId.folio;
    if (this.parent.length < n) this.parent = new Int32Array(Math.max(n, 2 * this.parent.length));
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }

  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]!]!;
      x = p[x]!;
    }
    return x;
  }

  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }

  mm(id: Id): number {
    return id;
  }
  anonVma(id: Id): number {
    return this.anonBase + id;
  }
  folio(id: Id): number {
    return this.folioBase + id;
  }
}

/** Join the component of a VMA (its mm, its anon_vma, the anon_vmas its chain names) to node. */
function joinVma(c: Components, s: State, node: number, vmaId: Id): void {
  const v = s.vmas[vmaId];
  if (v === undefined) return;
  c.union(node, c.mm(v.mm));
  if (v.anonVma !== NIL) c.union(node, c.anonVma(v.anonVma));
  for (const avcId of v.chain) {
    const avc = s.avcs[avcId];
    if (avc !== undefined) c.union(node, c.anonVma(avc.anonVma));
  }
}

/** The node a lock of class cls on id belongs to. */
function lockNode(c: Components, s: State, cls: LockClass, id: Id): number {
  switch (cls) {
    case 'folio_lock':
      return c.folio(id);
    case 'anon_vma_rwsem':
      return c.anonVma(id);
    case 'vma_lock': {
      const v = s.vmas[id];
      return v === undefined ? -1 : c.mm(v.mm);
    }
    default:
      return c.mm(id);
  }
}

/** Join everything thread t can reach to one component; returns a node of it. */
function joinThread(c: Components, s: State, t: Thread): number {
  // A syscall thread runs in its process's mm; a walker starts from its folio.
  const node = t.walker === undefined ? c.mm(t.proc) : t.folios.length > 0 ? c.folio(t.folios[0]!) : -1;
  if (node < 0) return -1;
  for (const id of t.mms) c.union(node, c.mm(id));
  for (const id of t.vmas) joinVma(c, s, node, id);
  for (const id of t.anonVmas) if (id !== NIL) c.union(node, c.anonVma(id));
  for (const id of t.folios) if (id >= 0) c.union(node, c.folio(id));
  for (const h of t.held) {
    const n = lockNode(c, s, h.cls, h.id);
    if (n >= 0) c.union(node, n);
  }
  if (t.queued !== undefined) {
    const n = lockNode(c, s, t.queued.cls, t.queued.id);
    if (n >= 0) c.union(node, n);
  }
  for (const p of t.seen) c.union(node, c.mm(p.mm));
  return node;
}

/** Link every record of s to its component. */
function joinRecords(c: Components, s: State): void {
  for (let id = 0; id < s.nextId.mm; id++) {
    const m = s.mms[id];
    if (m === undefined) continue;
    for (const vmaId of m.vmas) joinVma(c, s, c.mm(id), vmaId);
    const ptes = m.ptes;
    for (let page = 0; page < ptes.length; page++) {
      const f = ptes[page]?.folio;
      if (f !== undefined && f >= 0) c.union(c.mm(id), c.folio(f));
    }
  }
  for (let id = 0; id < s.nextId.anonVma; id++) {
    const a = s.anonVmas[id];
    if (a === undefined) continue;
    if (a.root !== NIL) c.union(c.anonVma(id), c.anonVma(a.root));
    if (a.parent !== NIL) c.union(c.anonVma(id), c.anonVma(a.parent));
  }
  for (let id = 0; id < s.nextId.folio; id++) {
    const f = s.folios[id];
    if (f !== undefined && f.anonVma !== NIL) c.union(c.folio(id), c.anonVma(f.anonVma));
  }
}

const components = new Components();

export type RecordTable = 'mms' | 'vmas' | 'anonVmas' | 'avcs' | 'folios';

/**
 * The components of s: of each thread in flight, of the actor of an action,
 * of a record. For the ample set and for the independence audit
 * (test/por.test.ts). Valid until the next call (one scratch union-find).
 */
export interface ComponentMap {
  /** -1 for a thread not in flight. */
  thread(id: Id): number;
  action(op: Op): number;
  record(table: RecordTable, id: Id): number;
}

export function componentMap(s: State): ComponentMap {
  const c = components;
  c.reset(s);
  joinRecords(c, s);
  const nodes = new Map<Id, number>();
  forEachThread(s, (t) => nodes.set(t.id, joinThread(c, s, t)));
  const thread = (id: Id): number => {
    const node = nodes.get(id);
    return node === undefined || node < 0 ? -1 : c.find(node);
  };
  return {
    thread,
    action(op) {
      if (op.kind === 'step') return thread(op.proc);
      if (op.kind === 'walk') {
        const f = s.mms[op.proc]?.ptes[op.page]?.folio;
        return f === undefined || f < 0 ? -1 : c.find(c.folio(f));
      }
      return c.find(c.mm(op.proc));
    },
    record(table, id) {
      switch (table) {
        case 'mms':
          return c.find(c.mm(id));
        case 'vmas':
          return c.find(c.mm(s.vmas[id]!.mm));
        case 'anonVmas':
          return c.find(c.anonVma(id));
        case 'avcs': {
          const avc = s.avcs[id]!;
          if (avc.anonVma !== NIL) return c.find(c.anonVma(avc.anonVma));
          if (avc.vma !== NIL) return c.find(c.mm(s.vmas[avc.vma]!.mm));
          // Not linked yet: private to the thread that allocated it, the
          // only one that knows its id (rmap.ts keeps it across a step only
          // at __anon_vma_prepare_locked, in nums[0]).
          let owner = -1;
          forEachThread(s, (t) => {
            if (t.pc === '__anon_vma_prepare_locked' && t.nums[0] === id) owner = thread(t.id);
          });
          return owner;
        }
        case 'folios':
          return c.find(c.folio(id));
      }
    },
  };
}

/**
 * The positions in ops (the enabled actions of s, in order) of an ample
 * set, or undefined to expand them all. next(op) is the successor under op
 * (the model has computed it already); tryFrom(x, op) the successor of
 * another state x, or undefined where op is not enabled in x.
 */
export function ampleSet(s: State, ops: readonly Op[], next: (op: Op) => State, tryFrom: (x: State, op: Op) => State | undefined): number[] | undefined {
  // Without a thread in flight every action issues something: nothing to reduce.
  if (ops.length < 2 || ops[0]!.kind !== 'step') return undefined;
  return componentSet(s, ops, next) ?? mmapHolderAlone(s, ops, next, tryFrom);
}

/** Every enabled action of one component, when the conditions at the top of this file hold. */
function componentSet(s: State, ops: readonly Op[], next: (op: Op) => State): number[] | undefined {
  const comps = componentMap(s);
  const ofAction = ops.map((op) => comps.action(op));
  // A component that is not a candidate: it issues, starts a walker, has a thread that cannot step, or forks a child.
  const ruledOut = new Set<number>([-1]);
  const stepping = new Set<Id>();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const comp = ofAction[i]!;
    if (op.kind !== 'step') ruledOut.add(comp);
    else {
      stepping.add(op.proc);
      const t = next(op);
      if (t.nextId.mm !== s.nextId.mm || threadOf(t, op.proc)?.queued !== undefined) ruledOut.add(comp);
    }
  }
  forEachThread(s, (t) => {
    if (!stepping.has(t.id) || t.queued !== undefined) ruledOut.add(comps.thread(t.id));
  });
  // The candidate with fewest actions (the first such, in action order).
  let best: number[] | undefined;
  for (let i = 0; i < ops.length; i++) {
    const comp = ofAction[i]!;
    if (ruledOut.has(comp)) continue;
    ruledOut.add(comp);
    const members: number[] = [];
    for (let j = i; j < ops.length; j++) if (ofAction[j] === comp) members.push(j);
    if (best === undefined || members.length < best.length) best = members;
  }
  return best !== undefined && best.length < ops.length ? best : undefined;
}

/**
 * One step alone, inside a component: the step of a thread T that holds its
 * process P's mmap_lock (for write, or for read) and still holds it after
 * the step, when the only other actions of T's component are syscalls P's
 * one idle thread U may issue, and each of them only queues U on that lock.
 *
 * That is how the kernel makes a second thread of the mm wait: mmap,
 * munmap, mprotect, mremap and fork take mmap_lock for write, and a writer
 * joins the wait list behind a writer or readers (§6); a fault whose VMA a
 * writer has write-locked (vma_start_write, §1.2) fails lock_vma_under_rcu
 * and falls back to mmap_read_lock, which waits (do_user_addr_fault;
 * mm/mmap_lock.c). The rule does not assume it: it reads it from the
 * successors, so a variant whose fault does not wait is not reduced here
 * (test/por.test.ts: without these checks VL1 is missed).
 *
 * Why {T's step a} is a persistent set that keeps every violation:
 *   - before a, the only actions outside it are U's issues (each leaves U
 *     queued on a lock T keeps through a, with nothing more to do; at most
 *     one thread of P is idle, so no other can issue after U) and actions
 *     of other components (independent, and a creates no process);
 *   - a and each issue b commute: b is enabled after a and a after b, and
 *     both orders reach the same state (checked on the canonical encoding);
 *   - b is invisible: it adds no warning and makes no state quiescent (T
 *     is in flight), and a queued U holds nothing; so a property violated
 *     after b was already violated before it. A reordered path has the
 *     same length, so quiescent and end states keep their depth.
 * The engine adds the cycle proviso.
 */
function mmapHolderAlone(s: State, ops: readonly Op[], next: (op: Op) => State, tryFrom: (x: State, op: Op) => State | undefined): number[] | undefined {
  const threads = s.budgets.threads ?? 1;
  for (let i = 0; i < ops.length; i++) {
    const a = ops[i]!;
    if (a.kind !== 'step') break; // the steps come first
    const holder = threadOf(s, a.proc);
    if (holder === undefined || holder.walker !== undefined) continue;
    const proc = holder.proc;
    if (!holdsMmapLock(s, holder, proc)) continue;
    let inFlight = 0;
    procThreads(s, proc, () => inFlight++);
    if (inFlight < threads - 1) continue;
    const afterA = next(a);
    if (afterA.nextId.mm !== s.nextId.mm || !holdsMmapLock(afterA, threadOf(afterA, holder.id), proc)) continue;
    if (commutesWithIssues(s, ops, a, holder, afterA, next, tryFrom)) return [i];
  }
  return undefined;
}

/** Every other action of holder's component is an issue of its process that queues on the process's mmap_lock and commutes with holder's step a. */
function commutesWithIssues(s: State, ops: readonly Op[], a: Op, holder: Thread, afterA: State, next: (op: Op) => State, tryFrom: (x: State, op: Op) => State | undefined): boolean {
  const proc = holder.proc;
  const queuedHere = (t: Thread | undefined): boolean => t?.queued !== undefined && t.queued.cls === 'mmap_lock' && t.queued.id === proc;
  // The cheap test first: every issue of proc only queues (its successor is known already).
  const issues: { b: Op; afterB: State }[] = [];
  for (const b of ops) {
    if (b.kind === 'step' || b.kind === 'walk' || b.proc !== proc) continue;
    const afterB = next(b);
    if (!queuedHere(threadOf(afterB, opThread(b))) || afterB.warnings.length !== s.warnings.length) return false;
    issues.push({ b, afterB });
  }
  const comps = componentMap(s);
  const comp = comps.thread(holder.id);
  let othersWait = true;
  forEachThread(s, (t) => {
    if (t.id !== holder.id && comps.thread(t.id) === comp && !queuedHere(t)) othersWait = false;
  });
  if (!othersWait) return false;
  for (const b of ops) {
    if (b !== a && comps.action(b) === comp && (b.kind === 'step' || b.kind === 'walk' || b.proc !== proc)) return false;
  }
  // The component map is one scratch, no longer needed: the diamonds run transitions.
  for (const { b, afterB } of issues) {
    const ab = tryFrom(afterA, b);
    const ba = ab === undefined ? undefined : tryFrom(afterB, a);
    if (ba === undefined || !sameEncoding(ab!, ba)) return false;
  }
  return true;
}

/** Thread t holds process proc's mmap_lock, for write or for read (its held list names it). */
function holdsMmapLock(s: State, t: Thread | undefined, proc: Id): boolean {
  if (t === undefined) return false;
  if (s.mms[proc]?.mmapLock.writer === t.id) return true;
  for (const h of t.held) if (h.cls === 'mmap_lock' && h.id === proc) return true;
  return false;
}

function sameEncoding(x: State, y: State): boolean {
  const ex = encodeState(x);
  const ey = encodeState(y);
  if (ex.length !== ey.length) return false;
  for (let k = 0; k < ex.length; k++) if (ex[k] !== ey[k]) return false;
  return true;
}

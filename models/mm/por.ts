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
import { NIL, forEachThread, threadOf, type Id, type LockClass, type State, type Thread } from './state.ts';
import type { Op } from './ops.ts';

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
 * (the model has computed it already).
 */
export function ampleSet(s: State, ops: readonly Op[], next: (op: Op) => State): number[] | undefined {
  // Without a thread in flight every action issues something: nothing to reduce.
  if (ops.length < 2 || ops[0]!.kind !== 'step') return undefined;
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

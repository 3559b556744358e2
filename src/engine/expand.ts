// One batch of a BFS level, expanded in a worker thread (DESIGN.md §5).
// The batch is a run of consecutive frontier states, packed; each successor
// is fingerprinted, dropped when an earlier level has it (the shared visited
// set, read-only during a level), and otherwise offered to the level table
// (src/engine/leveltable.ts). A successor is sent back (packed, with its
// parent position, action index, fingerprint and violations) unless the
// table shows that a state of smaller rank already reached it: such a
// successor can never be the one recorded. The main thread picks the owners
// after the level (src/engine/parallel.ts).
import { actionsToExpand, checkProperties, scratchEncoder, searchModel, transitionChecker, type Model, type TransitionCheck, type Violation } from './model.ts';
import { fingerprintInto } from './hash.ts';
import { containsKey } from './visited.ts';
import { FULL, LevelTable } from './leveltable.ts';
import { packStateScratch, PackedList, unpackState } from './pack.ts';
import { KindCounters } from './coverage.ts';

export interface ExpandTask {
  /** Level position of the batch's first state. */
  first: number;
  /** The batch's packed states and their offsets (count + 1). */
  bytes: Uint8Array;
  offsets: Uint32Array;
  /** The visited set's keys (fingerprints of earlier levels). */
  visited: SharedArrayBuffer;
  /** The level table. */
  table: SharedArrayBuffer;
  /** Properties to check (the ones not violated yet); undefined: all. */
  check?: string[];
  /**
   * false on a level whose successors will never be expanded (the last,
   * with no checkpoint to resume from): they are checked, not packed.
   */
  keep: boolean;
}

/**
 * Sent once to each worker of a new pool: build the model, then wait until
 * every worker has (so each worker takes exactly one), and answer null.
 * The pool is then warm, and the search's time does not include start-up.
 */
export interface WarmUpTask {
  warmup: SharedArrayBuffer;
  workers: number;
}

/** Count this worker ready and wait (up to 60 s) for the others. */
export function warmUp(task: WarmUpTask): null {
  const w = new Int32Array(task.warmup);
  Atomics.add(w, 0, 1);
  Atomics.notify(w, 0);
  const deadline = Date.now() + 60_000;
  for (let c = Atomics.load(w, 0); c < task.workers && Date.now() < deadline; c = Atomics.load(w, 0)) Atomics.wait(w, 0, c, 1000);
  return null;
}

export interface ExpandResult {
  /** The level table filled up: nothing else here is meaningful; grow it and re-run. */
  full: boolean;
  /** Actions of each state of the batch (= successors generated from it). */
  counts: Int32Array;
  /** Action kind of every successor generated, in order, as an index into kindNames. */
  kinds: Uint16Array;
  kindNames: string[];
  /** Per candidate: parent's level position, action index, fingerprint hi, lo, kind index. */
  cand: Int32Array;
  /** The candidates' packed states. */
  bytes: Uint8Array;
  offsets: Uint32Array;
  /** Candidates that violate a property: candidate number and checkProperties' output. */
  violations: { c: number; vs: Violation[] }[];
  /**
   * Transitions that violate a transition property, in generation order: the
   * parent's level position, the action index, the successor's fingerprint
   * (it may have been visited already) and checkTransition's output.
   */
  transitions: TransitionViolation[];
}

export interface TransitionViolation {
  pos: number;
  k: number;
  hi: number;
  lo: number;
  vs: Violation[];
}

/** Per-thread memory of one model: the action kinds seen, numbered in a stable order. */
export class ExpandContext<S, A> {
  readonly kinds: KindCounters;
  /** The model the inner loop runs (Model.forSearch). */
  readonly model: Model<S, A>;
  /** The search model's encoding, to fingerprint at once. */
  readonly encode: (s: S) => Int32Array;
  /** Its transition properties, found once. */
  readonly checkTransition: TransitionCheck<S, A>;

  constructor(model: Model<S, A>) {
    this.model = searchModel(model);
    this.encode = scratchEncoder(this.model);
    this.checkTransition = transitionChecker(this.model);
    this.kinds = new KindCounters(model.actionKinds);
  }
}

export const CAND_WORDS = 5;

/** The packed form of a successor that is checked but never expanded. */
const NOTHING = new Uint8Array(0);

export function expandBatch<S, A>(ctx: ExpandContext<S, A>, task: ExpandTask): ExpandResult {
  const { model } = ctx;
  const visited = new Uint32Array(task.visited);
  const table = new LevelTable(task.table);
  const only = task.check ? new Set(task.check) : undefined;
  const n = task.offsets.length - 1;
  const counts = new Int32Array(n);
  let kinds = new Uint16Array(n * 32);
  let nk = 0;
  let cand = new Int32Array(64 * CAND_WORDS);
  let nc = 0;
  const packed = new PackedList();
  const violations: { c: number; vs: Violation[] }[] = [];
  const transitions: TransitionViolation[] = [];
  const fp = new Uint32Array(2);
  // Fingerprints this batch sent from the current parent (a parent can reach one state by two actions).
  const sentHi: number[] = [];
  const sentLo: number[] = [];
  const fullResult = (): ExpandResult => ({
    full: true,
    counts: new Int32Array(0),
    kinds: new Uint16Array(0),
    kindNames: [],
    cand: new Int32Array(0),
    bytes: new Uint8Array(0),
    offsets: new Uint32Array(1),
    violations: [],
    transitions: [],
  });

  for (let i = 0; i < n; i++) {
    const s = unpackState(model, task.bytes.subarray(task.offsets[i]!, task.offsets[i + 1]!));
    const pos = task.first + i;
    const rank = pos + 1;
    const acts = model.actions(s);
    const ample = model.ample === undefined ? undefined : actionsToExpand(model, s, acts, ctx.encode, fingerprintInto, (hi, lo) => containsKey(visited, hi, lo));
    const width = ample === undefined ? acts.length : ample.positions.length;
    counts[i] = width;
    sentHi.length = 0;
    sentLo.length = 0;
    for (let j = 0; j < width; j++) {
      const k = ample === undefined ? j : ample.positions[j]!;
      const a = acts[k]!;
      const t = model.next(s, a);
      const kind = ctx.kinds.slotOf(model.actionKind(a));
      if (nk === kinds.length) {
        const g = new Uint16Array(kinds.length * 2);
        g.set(kinds);
        kinds = g;
      }
      kinds[nk++] = kind;
      if (ample === undefined) fingerprintInto(ctx.encode(t), fp);
      else {
        fp[0] = ample.fingerprints[2 * j]!;
        fp[1] = ample.fingerprints[2 * j + 1]!;
      }
      const hi = fp[0]!;
      const lo = fp[1]!;
      const tv = ctx.checkTransition(s, a, t, only);
      if (tv.length > 0) transitions.push({ pos, k, hi, lo, vs: [...tv] });
      if (containsKey(visited, hi, lo)) continue;
      const before = table.offer(hi, lo, rank);
      if (before === FULL) return fullResult();
      if (before !== 0 && before < rank) continue;
      if (before === rank && sentFrom(sentHi, sentLo, hi, lo)) continue;
      sentHi.push(hi);
      sentLo.push(lo);
      if ((nc + 1) * CAND_WORDS > cand.length) {
        const g = new Int32Array(cand.length * 2);
        g.set(cand);
        cand = g;
      }
      const b = nc * CAND_WORDS;
      cand[b] = pos;
      cand[b + 1] = k;
      cand[b + 2] = hi;
      cand[b + 3] = lo;
      cand[b + 4] = kind;
      packed.push(task.keep ? packStateScratch(model, t) : NOTHING);
      const vs = checkProperties(model, t, only);
      if (vs.length > 0) violations.push({ c: nc, vs });
      nc++;
    }
  }
  const p = packed.compact();
  return {
    full: false,
    counts,
    kinds: kinds.slice(0, nk),
    kindNames: [...ctx.kinds.names],
    cand: cand.slice(0, nc * CAND_WORDS),
    bytes: p.bytes,
    offsets: p.offsets,
    violations,
    transitions,
  };
}

function sentFrom(his: number[], los: number[], hi: number, lo: number): boolean {
  for (let j = 0; j < his.length; j++) if (his[j] === hi && los[j] === lo) return true;
  return false;
}

/** The buffers of a result, to transfer rather than copy. */
export function resultBuffers(r: ExpandResult): ArrayBuffer[] {
  return [r.counts.buffer, r.kinds.buffer, r.cand.buffer, r.bytes.buffer, r.offsets.buffer] as ArrayBuffer[];
}

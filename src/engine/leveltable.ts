// The table of one BFS level's new fingerprints, shared by the workers in a
// SharedArrayBuffer (DESIGN.md §5, design (a)). Open addressing with linear
// probing; a worker claims an empty slot with Atomics.compareExchange on its
// `lo` word, then publishes `hi`, and every worker that reaches the same
// fingerprint lowers the slot's rank with an atomic min. The rank is the
// position in the level of the state being expanded (plus one): after the
// level, the successor whose parent has the smallest position owns the
// fingerprint, whichever worker got there first. That is the parent the
// single-thread BFS would have recorded, so state indices, parent links and
// traces do not depend on the number of workers.
//
// Layout (Int32 words): [count, 0, 0, 0], then per slot: lo, hi, rank.
// hi and lo are stored with 0 replaced by 1 (0 marks "empty" and "hi not yet
// published"), which merges fingerprints differing only there: one extra
// collision in 2^32 for a state whose half is 0, on top of the 2^-64 of the
// fingerprint itself, and only within one level.
//
// The table never loses an entry: an offer that would pass the load limit
// returns FULL, the worker abandons its batch, and the main thread grows the
// table (rehashing with the ranks) when no worker is running and re-runs the
// batch. Offers are idempotent (an atomic min), so the re-run is exact.

const HEADER = 4;
const MAX_LOAD = 0.7;
/**
 * offer(): the table is at its load limit; grow it and re-run the batch.
 * Not a rank: the main thread marks a slot it has taken with -rank, which
 * offer() returns, and ranks are below 2^31.
 */
export const FULL = -0x80000000;

export class LevelTable {
  readonly words: Int32Array;
  readonly capacity: number;
  private readonly mask: number;
  private readonly growAt: number;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer);
    this.capacity = (this.words.length - HEADER) / 3;
    this.mask = this.capacity - 1;
    this.growAt = Math.floor(this.capacity * MAX_LOAD);
  }

  /** A table for about `expected` fingerprints (a power of two of slots). */
  static create(expected: number): LevelTable {
    let cap = 16;
    while (cap * MAX_LOAD < expected) cap *= 2;
    return new LevelTable(new SharedArrayBuffer((HEADER + cap * 3) * 4));
  }

  get size(): number {
    return Atomics.load(this.words, 0);
  }

  get bytes(): number {
    return this.buffer.byteLength;
  }

  /**
   * A worker reached fingerprint (hi, lo) from the state of rank `rank` (>= 1).
   * Returns the rank stored before (0 when none; rank when it was already
   * this one), or FULL.
   */
  offer(hi: number, lo: number, rank: number): number {
    const w = this.words;
    const h = hi | 0 || 1;
    const l = lo | 0 || 1;
    let slot = l & this.mask;
    for (;;) {
      const base = HEADER + slot * 3;
      let cur = Atomics.load(w, base);
      if (cur === 0) {
        if (Atomics.load(w, 0) >= this.growAt) return FULL;
        cur = Atomics.compareExchange(w, base, 0, l);
        if (cur === 0) {
          Atomics.add(w, 0, 1);
          Atomics.store(w, base + 1, h);
          return atomicMin(w, base + 2, rank);
        }
      }
      if (cur === l) {
        let ch: number;
        // The claimer publishes hi right after its compareExchange.
        while ((ch = Atomics.load(w, base + 1)) === 0);
        if (ch === h) return atomicMin(w, base + 2, rank);
      }
      slot = (slot + 1) & this.mask;
    }
  }

  /**
   * Main thread, after the level: true when (hi, lo) is owned by `rank` and
   * not taken yet; marks it taken, so a second successor of the same parent
   * with the same fingerprint is not taken twice.
   */
  take(hi: number, lo: number, rank: number): boolean {
    const base = this.find(hi, lo);
    if (base < 0 || this.words[base + 2] !== rank) return false;
    this.words[base + 2] = -rank;
    return true;
  }

  /** The rank stored for (hi, lo) (0 when absent); final once every state of smaller rank is expanded. */
  rankOf(hi: number, lo: number): number {
    const base = this.find(hi, lo);
    return base < 0 ? 0 : Atomics.load(this.words, base + 2);
  }

  /** The word index of (hi, lo)'s slot, or -1 (main thread: slots it asks for are published). */
  private find(hi: number, lo: number): number {
    const w = this.words;
    const h = hi | 0 || 1;
    const l = lo | 0 || 1;
    for (let slot = l & this.mask; ; slot = (slot + 1) & this.mask) {
      const base = HEADER + slot * 3;
      const cur = Atomics.load(w, base);
      if (cur === 0) return -1;
      if (cur === l && Atomics.load(w, base + 1) === h) return base;
    }
  }

  /** Main thread, no worker running: a table twice the size with the same entries and ranks. */
  grow(): LevelTable {
    const t = LevelTable.create(this.capacity * 2 * MAX_LOAD);
    const w = this.words;
    const nw = t.words;
    for (let s = 0; s < this.capacity; s++) {
      const base = HEADER + s * 3;
      const l = w[base]!;
      if (l === 0) continue;
      let slot = l & t.mask;
      while (nw[HEADER + slot * 3] !== 0) slot = (slot + 1) & t.mask;
      const nb = HEADER + slot * 3;
      nw[nb] = l;
      nw[nb + 1] = w[base + 1]!;
      nw[nb + 2] = w[base + 2]!;
      nw[0]!++;
    }
    return t;
  }
}

/** Lower w[i] to r (0 stands for "no rank yet"); returns the value before. */
function atomicMin(w: Int32Array, i: number, r: number): number {
  let cur = Atomics.load(w, i);
  while (cur === 0 || cur > r) {
    const old = Atomics.compareExchange(w, i, cur, r);
    if (old === cur) return cur;
    cur = old;
  }
  return cur;
}

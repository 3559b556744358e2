// The visited set: 64-bit fingerprints in a typed-array open-addressing table
// with linear probing (DESIGN.md §5; cf. Rumur's doc/internals-seen-state-set.rst).
//
// Layout, per slot s:   keys[2s] = hi, keys[2s+1] = lo: 8 bytes a slot. The
// search needs no index per state (parent links are dense in discovery
// order, src/engine/parents.ts), so the table holds fingerprints only.
// Fingerprint 0/0 marks an empty slot, so a real 0/0 is stored as 0/1 (one
// extra collision in 2^64, cheaper than a separate occupancy bitmap).
// All state lives in typed-array fields (no closures, no JS objects per
// entry). With `shared`, `keys` lives in a SharedArrayBuffer: the parallel
// explorer (src/engine/parallel.ts) inserts on the main thread between
// levels and the workers read it during a level (`containsKey`), when
// nobody writes it.
//
// The table grows by half when the load factor would exceed 0.75: nothing
// is ever dropped (unlike a bit-state/hash-compaction table), so a full
// search is exhaustive up to fingerprint collisions only. Growing by half
// rather than doubling keeps the load between 0.5 and 0.75, so the table
// costs 10.7 to 16 bytes a state. The capacity is then not a power of two:
// a fingerprint's home slot is lo scaled to the capacity (floor(lo * cap /
// 2^32), the "fastrange" reduction), which uses lo's high bits.

const MAX_LOAD = 0.75;
/** 2^30 slots = 8 GiB of table: beyond that a typed array cannot be addressed with `slot << 1`. */
const MAX_CAPACITY = 2 ** 30;
const GROWTH = 1.5;

/** The home slot of a fingerprint whose lo half is `lo`, in a table of `cap` slots. */
function home(lo: number, cap: number): number {
  // lo * cap < 2^62 is rounded to a double the same way on every thread; the
  // floor is below cap except when that rounding reaches 2^32 * cap exactly.
  const s = Math.floor((lo * cap) / 4294967296);
  return s < cap ? s : cap - 1;
}

/** The table cannot grow any further (a resource limit, not a bug). */
export class VisitedCapacityError extends Error {
  override name = 'VisitedCapacityError';
}

export class VisitedSet {
  /** hi, lo per slot; 0/0 = empty. */
  keys: Uint32Array;
  /** Number of slots. */
  capacity: number;
  /** Number of fingerprints stored. */
  size = 0;
  private growAt: number;

  /** Keys in a SharedArrayBuffer (readable from other threads). */
  readonly shared: boolean;

  constructor(initialCapacity = 1 << 12, shared = false) {
    const cap = Math.max(16, Math.ceil(initialCapacity));
    if (cap > MAX_CAPACITY) throw new VisitedCapacityError(`visited set capacity ${initialCapacity} exceeds ${MAX_CAPACITY} slots`);
    this.shared = shared;
    this.capacity = cap;
    this.growAt = Math.floor(cap * MAX_LOAD);
    this.keys = this.allocate(cap);
  }

  /** A set holding `keys` (a table written by another VisitedSet, e.g. read back from a checkpoint). */
  static fromKeys(keys: Uint32Array, size: number, shared = false): VisitedSet {
    const v = new VisitedSet(keys.length / 2, shared);
    if (v.capacity * 2 !== keys.length) throw new RangeError(`visited keys of ${keys.length} words are not a table`);
    v.keys.set(keys);
    v.size = size;
    return v;
  }

  /** Slots after the next growth. */
  static grown(capacity: number): number {
    return Math.min(MAX_CAPACITY, Math.ceil(capacity * GROWTH));
  }

  /** The load at which a table grows. */
  static readonly MAX_LOAD = MAX_LOAD;

  private allocate(cap: number): Uint32Array {
    return this.shared ? new Uint32Array(new SharedArrayBuffer(cap * 8)) : new Uint32Array(cap * 2);
  }

  /** Insert a fingerprint; true when it was new. */
  insert(hi: number, lo: number): boolean {
    // Normalise to uint32: the table holds uint32, and a signed int32 argument
    // would never compare equal to what was stored.
    hi >>>= 0;
    lo >>>= 0;
    if (hi === 0 && lo === 0) lo = 1;
    if (this.size >= this.growAt) this.grow();
    const keys = this.keys;
    const cap = this.capacity;
    let slot = home(lo, cap);
    for (;;) {
      const j = slot << 1;
      const h = keys[j]!;
      const l = keys[j + 1]!;
      if (h === 0 && l === 0) {
        keys[j] = hi;
        keys[j + 1] = lo;
        this.size++;
        return true;
      }
      if (h === hi && l === lo) return false;
      if (++slot === cap) slot = 0;
    }
  }

  has(hi: number, lo: number): boolean {
    return containsKey(this.keys, hi, lo);
  }

  /** Bytes held by the table arrays. */
  get bytes(): number {
    return this.keys.byteLength;
  }

  /** Table bytes per stored state (0 when empty). */
  get bytesPerState(): number {
    return this.size === 0 ? 0 : this.bytes / this.size;
  }

  /** Grow the table by half and re-insert every entry. */
  private grow(): void {
    const cap = VisitedSet.grown(this.capacity);
    if (cap <= this.capacity) {
      throw new VisitedCapacityError(`visited set full: ${this.size} states; it cannot grow beyond ${MAX_CAPACITY} slots`);
    }
    const oldKeys = this.keys;
    let keys: Uint32Array;
    try {
      keys = this.allocate(cap);
    } catch (e) {
      throw new VisitedCapacityError(`visited set cannot grow to ${cap} slots (${Math.round((cap * 8) / 2 ** 20)} MiB): ${(e as Error).message}`);
    }
    for (let s = 0; s < this.capacity; s++) {
      const hi = oldKeys[s << 1]!;
      const lo = oldKeys[(s << 1) + 1]!;
      if (hi === 0 && lo === 0) continue;
      let slot = home(lo, cap);
      while (keys[slot << 1] !== 0 || keys[(slot << 1) + 1] !== 0) if (++slot === cap) slot = 0;
      keys[slot << 1] = hi;
      keys[(slot << 1) + 1] = lo;
    }
    this.keys = keys;
    this.capacity = cap;
    this.growAt = Math.floor(cap * MAX_LOAD);
  }
}

/**
 * Membership in a table's keys array alone (a VisitedSet's `keys`, possibly
 * seen from another thread through its SharedArrayBuffer).
 */
export function containsKey(keys: Uint32Array, hi: number, lo: number): boolean {
  hi >>>= 0;
  lo >>>= 0;
  if (hi === 0 && lo === 0) lo = 1;
  const cap = keys.length >>> 1;
  let slot = home(lo, cap);
  for (;;) {
    const j = slot << 1;
    const h = keys[j]!;
    const l = keys[j + 1]!;
    if (h === 0 && l === 0) return false;
    if (h === hi && l === lo) return true;
    if (++slot === cap) slot = 0;
  }
}

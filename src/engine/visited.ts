// The visited set: 64-bit fingerprints in a typed-array open-addressing table
// with linear probing (DESIGN.md §5; cf. Rumur's doc/internals-seen-state-set.rst).
//
// Layout, per slot s:   keys[2s] = hi, keys[2s+1] = lo: 8 bytes a slot. The
// search needs no index per state (parent links are dense in discovery
// order, src/engine/parents.ts), so the table holds fingerprints only.
// Fingerprint 0/0 marks an empty slot, so a real 0/0 is stored as 0/1 (one
// extra collision in 2^64, cheaper than a separate occupancy bitmap).
// All state lives in typed-array fields (no closures, no JS objects per
// entry), so a later change can put `keys` in a SharedArrayBuffer
// and insert with Atomics.compareExchange.
//
// The table doubles when the load factor would exceed 0.75: nothing is ever
// dropped (unlike a bit-state/hash-compaction table), so a full search is
// exhaustive up to fingerprint collisions only.

const MAX_LOAD = 0.75;
/** 2^30 slots = 8 GiB of table: beyond that a typed array cannot be addressed with `slot << 1`. */
const MAX_CAPACITY = 2 ** 30;

/** The table cannot grow any further (a resource limit, not a bug). */
export class VisitedCapacityError extends Error {
  override name = 'VisitedCapacityError';
}

export class VisitedSet {
  /** hi, lo per slot; 0/0 = empty. */
  keys: Uint32Array;
  /** Number of slots (a power of two). */
  capacity: number;
  /** Number of fingerprints stored. */
  size = 0;
  private mask: number;
  private growAt: number;

  constructor(initialCapacity = 1 << 12) {
    let cap = 16;
    while (cap < initialCapacity) cap *= 2;
    if (cap > MAX_CAPACITY) throw new VisitedCapacityError(`visited set capacity ${initialCapacity} exceeds ${MAX_CAPACITY} slots`);
    this.capacity = cap;
    this.mask = cap - 1;
    this.growAt = Math.floor(cap * MAX_LOAD);
    this.keys = new Uint32Array(cap * 2);
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
    const mask = this.mask;
    // lo is the fully avalanched xxhash lane: its low bits pick the slot.
    let slot = lo & mask;
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
      slot = (slot + 1) & mask;
    }
  }

  has(hi: number, lo: number): boolean {
    hi >>>= 0;
    lo >>>= 0;
    if (hi === 0 && lo === 0) lo = 1;
    const keys = this.keys;
    const mask = this.mask;
    let slot = lo & mask;
    for (;;) {
      const j = slot << 1;
      const h = keys[j]!;
      const l = keys[j + 1]!;
      if (h === 0 && l === 0) return false;
      if (h === hi && l === lo) return true;
      slot = (slot + 1) & mask;
    }
  }

  /** Bytes held by the table arrays. */
  get bytes(): number {
    return this.keys.byteLength;
  }

  /** Table bytes per stored state (0 when empty). */
  get bytesPerState(): number {
    return this.size === 0 ? 0 : this.bytes / this.size;
  }

  /** Double the table and re-insert every entry. */
  private grow(): void {
    const cap = this.capacity * 2;
    if (cap > MAX_CAPACITY) {
      throw new VisitedCapacityError(`visited set full: ${this.size} states; it cannot grow beyond ${MAX_CAPACITY} slots`);
    }
    const oldKeys = this.keys;
    let keys: Uint32Array;
    try {
      keys = new Uint32Array(cap * 2);
    } catch (e) {
      throw new VisitedCapacityError(`visited set cannot grow to ${cap} slots (${(cap * 8) / 2 ** 20} MiB): ${(e as Error).message}`);
    }
    const mask = cap - 1;
    for (let s = 0; s < this.capacity; s++) {
      const hi = oldKeys[s << 1]!;
      const lo = oldKeys[(s << 1) + 1]!;
      if (hi === 0 && lo === 0) continue;
      let slot = lo & mask;
      while (keys[slot << 1] !== 0 || keys[(slot << 1) + 1] !== 0) slot = (slot + 1) & mask;
      keys[slot << 1] = hi;
      keys[(slot << 1) + 1] = lo;
    }
    this.keys = keys;
    this.capacity = cap;
    this.mask = mask;
    this.growAt = Math.floor(cap * MAX_LOAD);
  }
}

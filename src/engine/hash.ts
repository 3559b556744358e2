// 64-bit state fingerprints (DESIGN.md §5). The visited set stores only the
// fingerprint, so two distinct states with equal fingerprints would silently
// merge: the two 32-bit halves come from two lanes with *different* mixing
// functions (a murmur3_32 block lane and an xxhash32 round lane), so that a
// weakness of one lane is not shared by the other. Everything is Math.imul
// and shifts on 32-bit integers: no BigInt and no allocation on the hot path.

const M1 = 0xcc9e2d51; // murmur3_32 block constants
const M2 = 0x1b873593;
const X1 = 0x9e3779b1; // xxhash32 primes
const X2 = 0x85ebca77;
const X3 = 0xc2b2ae3d;
const SEED_HI = 0x5bd1e995;
const SEED_LO = 0x27d4eb2f;

/**
 * Fingerprint `words` into out[0] (hi) and out[1] (lo), both uint32.
 * The caller owns `out` and reuses it, so the explorer's inner loop does not
 * allocate a result object per successor.
 */
export function fingerprintInto(words: Int32Array, out: Uint32Array): void {
  const n = words.length;
  let h1 = SEED_HI;
  let h2 = SEED_LO;
  for (let i = 0; i < n; i++) {
    const w = words[i]!;
    // Lane hi: murmur3_32 body.
    let k = Math.imul(w, M1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, M2);
    h1 ^= k;
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
    // Lane lo: xxhash32 accumulator round (bijective in both h2 and w).
    h2 = (h2 + Math.imul(w, X2)) | 0;
    h2 = (h2 << 13) | (h2 >>> 19);
    h2 = Math.imul(h2, X1);
  }
  // The length is mixed in so that trailing zero words change the fingerprint
  // ([0] and [0, 0] are different encodings).
  h1 ^= n;
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;

  h2 = (h2 + Math.imul(n, X3)) | 0;
  h2 ^= h2 >>> 15;
  h2 = Math.imul(h2, X2);
  h2 ^= h2 >>> 13;
  h2 = Math.imul(h2, X3);
  h2 ^= h2 >>> 16;

  out[0] = h1;
  out[1] = h2;
}

/** Convenience form for cold paths (tests, replay): returns [hi, lo]. */
export function fingerprint(words: Int32Array): [hi: number, lo: number] {
  const out = new Uint32Array(2);
  fingerprintInto(words, out);
  return [out[0]!, out[1]!];
}

/** A fingerprint as 16 lowercase hex digits, hi first (stable: stored in the database). */
export function fingerprintHex(hi: number, lo: number): string {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

// Shrinking a counterexample (DESIGN.md §5): a trace (operation texts from
// the root) that violates a property is made smaller while it still
// violates the same property. Every candidate is re-validated by replaying
// its text with model.parseAction on each state (a candidate that does not
// parse or cannot run is skipped) and checking the property at each state;
// a candidate that violates it early is cut there.
//
// The loop is delta debugging (Zeller and Hildebrandt, "Simplifying and
// Isolating Failure-Inducing Input", 2002): remove chunks of operations,
// halving the chunk size down to one operation, then try the model's own
// simplifications (fewer processes, shorter lengths, lower addresses, for
// the mm model: src/cli/mm-search.ts), and start over until nothing is
// accepted. A candidate is accepted only when it is smaller in the order
// given by `size` (operations first), so the loop ends.

import { checkProperties, checkTransition, type Model } from './model.ts';
import { stateFingerprint } from './replay.ts';

export interface ShrinkOptions<S, A> {
  model: Model<S, A>;
  root: S;
  property: string;
  /** Simpler variants of a trace (same length or shorter), most promising first. */
  simplify?(trace: readonly string[]): Iterable<string[]>;
  /** The order candidates must decrease in, compared lexicographically after the length; default none. */
  size?(trace: readonly string[]): number[];
  /** Polled between candidates: true stops with the best trace so far. */
  shouldStop?(): boolean;
}

export interface Tested<S> {
  /** The candidate cut at its first state that violates the property. */
  trace: string[];
  state: S;
  details: string[];
}

export interface ShrinkResult<S> extends Tested<S> {
  fingerprint: string;
  /** Candidates replayed, accepted. */
  tried: number;
  accepted: number;
  ms: number;
}

/**
 * Replay `trace` from `root`; the prefix up to the first state violating
 * `property`, or undefined when the trace does not run or never violates it.
 */
export function testTrace<S, A>(model: Model<S, A>, root: S, property: string, trace: readonly string[]): Tested<S> | undefined {
  const only = new Set([property]);
  const at = (s: S): string[] => checkProperties(model, s, only).map((v) => v.detail);
  let s = root;
  let d = at(s);
  if (d.length > 0) return { trace: [], state: s, details: d };
  for (let i = 0; i < trace.length; i++) {
    const before = s;
    let a: A;
    try {
      a = model.parseAction(s, trace[i]!);
      s = model.next(s, a);
    } catch {
      // Does not parse, is not enabled here, or the model refuses it: not a trace of the model.
      return undefined;
    }
    d = [...checkTransition(model, before, a, s, only).map((v) => v.detail), ...at(s)];
    if (d.length > 0) return { trace: trace.slice(0, i + 1), state: s, details: d };
  }
  return undefined;
}

/** Lexicographic: a < b. */
function less(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return a.length < b.length;
}

/** Shrink a violating trace; throws when the trace does not violate the property. */
export function shrinkTrace<S, A>(o: ShrinkOptions<S, A>, trace: readonly string[]): ShrinkResult<S> {
  const t0 = performance.now();
  const { model, root, property } = o;
  const key = (t: readonly string[]): number[] => [t.length, ...(o.size?.(t) ?? []), t.join(';').length];
  let tried = 1;
  let accepted = 0;
  const first = testTrace(model, root, property, trace);
  if (!first) throw new Error(`the trace does not violate ${property}`);
  let cur = first;
  let curKey = key(cur.trace);
  const seen = new Set<string>();
  /** Test a candidate; adopt it when it is valid and smaller. */
  const attempt = (cand: string[]): boolean => {
    const id = cand.join('\n');
    if (seen.has(id)) return false;
    seen.add(id);
    tried++;
    const r = testTrace(model, root, property, cand);
    if (!r) return false;
    const k = key(r.trace);
    if (!less(k, curKey)) return false;
    cur = r;
    curKey = k;
    accepted++;
    return true;
  };
  const stop = (): boolean => o.shouldStop?.() === true;
  let progress = true;
  while (progress && !stop()) {
    progress = false;
    // 1. Remove chunks, largest first; at each size, from the end.
    for (let n = Math.max(1, cur.trace.length >> 1); n >= 1 && !stop(); n = n === 1 ? 0 : Math.max(1, n >> 1)) {
      for (let i = cur.trace.length - n; i >= 0 && !stop(); i--) {
        if (i + n > cur.trace.length) continue;
        if (attempt([...cur.trace.slice(0, i), ...cur.trace.slice(i + n)])) progress = true;
      }
    }
    // 2. The model's simplifications, restarted on every success.
    if (o.simplify) {
      let again = true;
      while (again && !stop()) {
        again = false;
        for (const cand of o.simplify(cur.trace)) {
          if (stop()) break;
          if (attempt(cand)) {
            progress = again = true;
            break;
          }
        }
      }
    }
  }
  return { ...cur, fingerprint: stateFingerprint(model, cur.state), tried, accepted, ms: performance.now() - t0 };
}

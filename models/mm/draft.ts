// Reading an immer draft without drafting what is read (a speed matter only:
// every transition stays an immer produce and writes go through the draft).
//
// Reading an object through a draft turns it into a draft too: a proxy, a
// shallow copy of its parent, and work at finalization, even when nothing is
// ever written to it. readable and peek return the current value without
// that: the original when immer reports the draft unmodified in this produce
// (then the original is the current value, deep), else the draft itself, or
// the plain value when it is not a draft (an unmodified base value, or a value
// created in this produce). A value they return is for reading only, and only
// until the next write to that object: a later write goes to the draft, which
// an original returned earlier does not see.
import { isDraft, isModified, original, produce } from 'immer';

/**
 * The fast path reads immer's per-draft state (the object behind the
 * `immer-state` symbol that isDraft, isModified and original read, with
 * modified_, base_ and copy_) in one proxy trap instead of four or five. It is
 * checked against the public API when this module loads; if a future immer
 * lays it out differently, the public API is used.
 */
const DRAFT_STATE = Symbol.for('immer-state');
interface DraftState {
  modified_: boolean;
  base_: object;
  copy_: object | null;
}
const stateOf = (x: object): DraftState | undefined => (x as { [DRAFT_STATE]?: DraftState })[DRAFT_STATE];

function fastReadable<T>(x: T): T {
  const st = typeof x === 'object' && x !== null ? stateOf(x) : undefined;
  return st === undefined || st.modified_ ? x : (st.base_ as T);
}

function fastPeek<T extends object, K extends keyof T>(o: T, k: K): T[K] {
  const st = stateOf(o);
  // immer's latest(state): the copy once one was made, else the base.
  return fastReadable(st === undefined ? o[k] : ((st.copy_ ?? st.base_) as T)[k]);
}

function publicReadable<T>(x: T): T {
  return isDraft(x) && !isModified(x) ? (original(x as object) as T) : x;
}

function publicPeek<T extends object, K extends keyof T>(o: T, k: K): T[K] {
  // A draft's property descriptor holds the current value as is (immer never turns it into a draft).
  return publicReadable(isDraft(o) ? (Reflect.getOwnPropertyDescriptor(o, k)?.value as T[K]) : o[k]);
}

/** The fast path agrees with the public API on drafts modified, unmodified, read, written and replaced. */
function fastPathAgrees(): boolean {
  try {
    let ok = true;
    const check = (cond: boolean): void => {
      ok &&= cond;
    };
    const base = { a: { x: 1 }, b: { y: [1] }, c: { z: 1 }, d: [{ w: 1 }] };
    produce(base, (draft) => {
      check(fastReadable(draft) === base && publicReadable(draft) === base);
      const b = draft.b;
      check(isDraft(b) && fastReadable(b) === base.b && fastPeek(draft, 'b') === base.b && publicPeek(draft, 'b') === base.b);
      draft.a.x = 2;
      check(fastReadable(draft) === draft && fastPeek(draft, 'a') === draft.a && publicPeek(draft, 'a') === draft.a);
      check(fastPeek(draft, 'b') === base.b && fastPeek(draft, 'c') === base.c && publicPeek(draft, 'c') === base.c);
      const fresh = { z: 2 };
      draft.c = fresh;
      check(fastPeek(draft, 'c') === fresh && publicPeek(draft, 'c') === fresh);
      draft.d.push({ w: 2 });
      check(fastPeek(draft, 'd') === draft.d && fastPeek(draft.d, 0) === base.d[0] && fastPeek(draft.d, 1) === publicPeek(draft.d, 1));
      check(fastPeek(draft.d, 1)?.w === 2 && fastPeek(fastPeek(draft, 'a'), 'x') === 2);
      check(fastReadable(fresh) === fresh && fastReadable(base) === base && fastPeek(base, 'a') === base.a);
    });
    return ok;
  } catch {
    return false;
  }
}

const fast = fastPathAgrees();
const draftReadable = fast ? fastReadable : publicReadable;
const draftPeek = fast ? fastPeek : publicPeek;

/**
 * How many immer produces are running (inDrafts counts them). With none, no
 * value can be a draft (the explorer's copy-on-write path, cow.ts), and
 * readable and peek are plain reads: no symbol lookups on every access.
 * A produce not counted is still correct: peek then reads through the draft,
 * which gives the current value too, only slower.
 */
let drafting = 0;

/** Run f (which opens an immer produce) with readable and peek looking for drafts. */
export function inDrafts<T>(f: () => T): T {
  drafting++;
  try {
    return f();
  } finally {
    drafting--;
  }
}

/** x for reading only: an unmodified draft's original, else x (see the top of this file). */
export function readable<T>(x: T): T {
  return drafting === 0 ? x : draftReadable(x);
}

/** The current o[k] for reading only, without making a draft of it (see the top of this file). */
export function peek<T extends object, K extends keyof T>(o: T, k: K): T[K] {
  return drafting === 0 ? o[k] : draftPeek(o, k);
}

/** Whether readable and peek use immer's draft state directly (for tests and benchmarks). */
export const draftFastPath = fast;

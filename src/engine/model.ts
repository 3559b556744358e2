// The interface between the explorer and a model. The engine knows nothing
// about anon_vmas: a model is a pure function from a state and an action to
// the next state, with a canonical encoding and named properties
// (cf. Stateright's Model trait; docs/style.md).

/**
 * When a property is evaluated (DESIGN.md §4). 'transition': on every
 * generated transition (state before, action, state after), through
 * checkTransition, also on those that lead to a state already visited.
 */
export type PropertyWhen = 'always' | 'quiescent' | 'end' | 'transition';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a property list mixes state and transition properties of one model
export interface Property<S, A = any> {
  /** Stable id used on the command line, in the database and in the bug corpus. */
  id: string;
  /** One line. */
  description: string;
  /** The kernel rule it encodes, with the digest section. */
  rule: string;
  when: PropertyWhen;
  /** Pure: one readable detail line per violation, [] when the property holds. */
  check(s: S): string[];
  /**
   * A transition property (when 'transition'): pure, of the state before,
   * the action and the state after (which carries the action's result, if
   * the model records one). One detail line per violation.
   */
  checkTransition?(before: S, action: A, after: S): string[];
}

export interface Violation {
  property: string;
  detail: string;
}

export interface Model<S, A> {
  /** Model name, e.g. "mainline" or a variant's name. */
  readonly name: string;
  /** The initial state (deterministic). */
  initial(): S;
  /**
   * The enabled actions, in a deterministic order: the explorer records an
   * action by its index in this list, and a trace is rebuilt by replaying
   * indices from the initial state. A new array at each call: the caller
   * may change it.
   */
  actions(s: S): A[];
  /** The successor of s under a (s is never mutated). */
  next(s: S, a: A): S;
  /**
   * Optional, for random walks: a superset of actions(s) in the same
   * relative order, cheaper to list because it does not find out which of
   * them are enabled (at lock granularity that means running each); with
   * tryNext, next(s, a) or undefined when a is not enabled in s. A walk then
   * draws candidates until one runs instead of running all of them to draw
   * one (src/engine/simulate.ts). With a kind (one of actionKinds), only
   * the candidates of that kind: a walk that draws the kind first lists
   * nothing else. A new array at each call, like actions.
   */
  candidates?(s: S, kind?: string): A[];
  tryNext?(s: S, a: A): S | undefined;
  /**
   * Canonical encoding: equal for states that differ only in allocation order
   * of ids or in a permutation of interchangeable processes; different for
   * states that differ in any modelled field. Hashed to a 64-bit fingerprint.
   */
  encode(s: S): Int32Array;
  /**
   * Optional: encode(s) in a buffer the model reuses, valid only until its
   * next call. The explorer's inner loop fingerprints it at once, without a
   * copy per successor.
   */
  encodeScratch?(s: S): Int32Array;
  /** The action in the operation syntax (DESIGN.md §3). */
  formatAction(s: S, a: A): string;
  /** Parse one operation in the context of state s; throws ParseError. */
  parseAction(s: S, text: string): A;
  /** Coverage key of an action (the syscall name). */
  actionKind(a: A): string;
  /** No syscall in flight (quiescent properties are checked only here). */
  isQuiescent(s: S): boolean;
  /** Everything finished (end properties are checked only here). */
  isFinal(s: S): boolean;
  readonly properties: readonly Property<S>[];
  /** All action kinds the model can offer under its bounds (to report those that never fired). */
  readonly actionKinds: readonly string[];
  /**
   * Optional compact serialisation, to move states between worker threads
   * (src/engine/parallel.ts): unpack(pack(s)) must behave exactly like s
   * under actions, next, encode and the properties. Without them the engine
   * uses v8.serialize / v8.deserialize (src/engine/pack.ts).
   */
  pack?(s: S): Uint8Array;
  /** Optional: pack(s) in a buffer the model reuses, valid only until its next call (copied at once by the explorer). */
  packScratch?(s: S): Uint8Array;
  unpack?(buf: Uint8Array): S;
  /**
   * Optional: the same model with transitions made for the explorer's inner
   * loop (e.g. without the reference semantics' immutable-update library).
   * It must agree with this model on every method; the engine searches with
   * it and rebuilds traces with this one, so every reported trace is also
   * re-checked under the reference semantics.
   */
  forSearch?(): Model<S, A>;
  /**
   * Optional partial-order reduction: the positions in actions (the enabled
   * actions of s, as actions(s) returned them) of an ample set, to expand
   * instead of all of them; undefined to expand them all. The model answers
   * for conditions C0 to C2 of the ample-set method (Peled; Clarke, Grumberg
   * and Peled, "Model Checking", ch. 10): the set is not empty; it is
   * persistent (no action outside it, nor any action reachable by such
   * actions alone, depends on one inside it); and every property violation
   * stays reachable without the actions left out (the model's own argument,
   * since the engine knows no property's footprint). The engine adds the
   * cycle proviso C3 in its breadth-first form: a state is expanded fully when
   * any ample successor is on a level up to its own (Bosnacki, Leue and
   * Lluch-Lafuente, "Partial-order reduction for general state exploring
   * algorithms", 2006), so no action is ignored around a cycle.
   */
  ample?(s: S, actions: readonly A[]): readonly number[] | undefined;
  /**
   * Optional: wraps the evaluation of the properties on one state, so that a
   * model can derive data once that its properties share.
   */
  evaluate?<T>(s: S, f: () => T): T;
}

/** The encoding to fingerprint at once: the model's scratch encoding when it has one. */
export function scratchEncoder<S, A>(model: Model<S, A>): (s: S) => Int32Array {
  const scratch = model.encodeScratch;
  return scratch ? (s) => scratch.call(model, s) : (s) => model.encode(s);
}

/** The model the explorer's inner loop runs. */
export function searchModel<S, A>(model: Model<S, A>): Model<S, A> {
  return model.forSearch?.() ?? model;
}

/** A malformed operation or option: reported in one line, exit code 2. */
export class ParseError extends Error {
  override name = 'ParseError';
}

/** Evaluate the properties that apply to s. */
export function checkProperties<S, A>(model: Model<S, A>, s: S, only?: ReadonlySet<string>): Violation[] {
  return model.evaluate ? model.evaluate(s, () => evaluateProperties(model, s, only)) : evaluateProperties(model, s, only);
}

function evaluateProperties<S, A>(model: Model<S, A>, s: S, only?: ReadonlySet<string>): Violation[] {
  const out: Violation[] = [];
  const quiescent = model.isQuiescent(s);
  const final = quiescent && model.isFinal(s);
  for (const p of model.properties) {
    if (only && !only.has(p.id)) continue;
    if (p.when === 'transition') continue;
    if (p.when === 'quiescent' && !quiescent) continue;
    if (p.when === 'end' && !final) continue;
    for (const detail of p.check(s)) out.push({ property: p.id, detail });
  }
  return out;
}

const NONE: readonly Violation[] = [];

export type TransitionCheck<S, A> = (before: S, action: A, after: S, only?: ReadonlySet<string>) => readonly Violation[];

/**
 * The evaluation of model's transition properties, with the list of them
 * found once: the explorer makes one per search and calls it on every
 * successor it generates, before looking the successor up in the visited set.
 */
export function transitionChecker<S, A>(model: Model<S, A>): TransitionCheck<S, A> {
  const list = model.properties.filter((p) => p.checkTransition !== undefined);
  if (list.length === 0) return () => NONE;
  return (before, action, after, only) => {
    let out: Violation[] | undefined;
    for (const p of list) {
      if (only && !only.has(p.id)) continue;
      for (const detail of p.checkTransition!(before, action, after)) (out ??= []).push({ property: p.id, detail });
    }
    return out ?? NONE;
  };
}

/** The transition properties on one transition (cold paths: replay, shrinking, tests). */
export function checkTransition<S, A>(model: Model<S, A>, before: S, action: A, after: S, only?: ReadonlySet<string>): readonly Violation[] {
  return transitionChecker(model)(before, action, after, only);
}

/**
 * The violations of each state of a replayed trace (states[i + 1] =
 * next(states[i], actions[i])): the transition properties of the step that
 * made it, then its state properties. For run, replay and shrinking.
 */
export function traceViolations<S, A>(model: Model<S, A>, states: readonly S[], actions: readonly A[], only?: ReadonlySet<string>): Violation[][] {
  return states.map((s, i) => {
    const vs = checkProperties(model, s, only);
    return i === 0 ? vs : [...checkTransition(model, states[i - 1]!, actions[i - 1]!, s, only), ...vs];
  });
}

/** An ample set to expand: the positions of its actions, and their successors' fingerprints (hi, lo pairs), found by the proviso. */
export interface Ample {
  positions: readonly number[];
  fingerprints: Uint32Array;
}

/**
 * The actions to expand from s under partial-order reduction: the model's
 * ample set when every successor it leads to is new (not on a level up to
 * s's own: seenBefore tells), otherwise all of them (undefined). The one
 * decision the pool's workers and the sequential explorer share, so both
 * search the same reduced graph. The proviso fingerprints the ample
 * successors; the caller takes those fingerprints rather than computing
 * them again.
 */
export function actionsToExpand<S, A>(
  model: Model<S, A>,
  s: S,
  acts: readonly A[],
  encode: (s: S) => Int32Array,
  fingerprint: (key: Int32Array, out: Uint32Array) => void,
  seenBefore: (hi: number, lo: number) => boolean,
): Ample | undefined {
  const positions = model.ample?.(s, acts);
  if (positions === undefined || positions.length === 0 || positions.length >= acts.length) return undefined;
  const fingerprints = new Uint32Array(2 * positions.length);
  for (let j = 0; j < positions.length; j++) {
    fingerprint(encode(model.next(s, acts[positions[j]!]!)), PROVISO_FP);
    if (seenBefore(PROVISO_FP[0]!, PROVISO_FP[1]!)) return undefined;
    fingerprints[2 * j] = PROVISO_FP[0]!;
    fingerprints[2 * j + 1] = PROVISO_FP[1]!;
  }
  return { positions, fingerprints };
}
const PROVISO_FP = new Uint32Array(2);

// Trace replay: a trace is stored as the minimal data that re-creates it
// (action positions, or operation texts for humans), and states, actions and
// text are rebuilt by re-running the model (cf. Stateright's checker/path.rs).

import { ParseError, type Model } from './model.ts';
import { fingerprintHex, fingerprintInto } from './hash.ts';

export interface Replayed<S, A> {
  /** states[0] is the root; states[i + 1] = next(states[i], actions[i]). */
  states: S[];
  actions: A[];
  /** Position of each action in model.actions(states[i]). */
  indices: number[];
}

/** Replay action positions (as recorded by the explorer's parent links) from `root`. */
export function replay<S, A>(model: Model<S, A>, root: S, actionIndices: readonly number[]): Replayed<S, A> {
  const states: S[] = [root];
  const actions: A[] = [];
  let s = root;
  for (let i = 0; i < actionIndices.length; i++) {
    const idx = actionIndices[i]!;
    const enabled = model.actions(s);
    const a = enabled[idx];
    if (a === undefined) {
      // A stored trace that no longer fits the model (the model changed since).
      throw new ParseError(`step ${i + 1}: action #${idx} does not exist; only ${enabled.length} actions are enabled`);
    }
    s = model.next(s, a);
    actions.push(a);
    states.push(s);
  }
  return { states, actions, indices: [...actionIndices] };
}

/**
 * Replay operations written in the operation syntax (`mmcheck run`, `replay`).
 * Each text is parsed in the context of the state it applies to, and must be
 * one of the actions the model enables there: the explorer would never have
 * taken a disabled action, so a trace through one is not a trace of the model.
 */
export function replayTexts<S, A>(model: Model<S, A>, root: S, texts: readonly string[]): Replayed<S, A> {
  const states: S[] = [root];
  const actions: A[] = [];
  const indices: number[] = [];
  let s = root;
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i]!;
    let a: A;
    try {
      a = model.parseAction(s, text);
    } catch (e) {
      // The operation parser quotes the operation it rejects; say it once (issue 14).
      if (e instanceof ParseError) throw new ParseError(e.message.startsWith('"') ? `step ${i + 1} ${e.message}` : `step ${i + 1} "${text}": ${e.message}`);
      throw e;
    }
    // An operation the explorer would not offer (outside its alphabet, or a
    // no-op it prunes) is still a valid step: parseAction has validated it.
    // Its index is -1 then.
    const want = model.formatAction(s, a);
    const enabled = model.actions(s);
    const idx = enabled.findIndex((b) => model.formatAction(s, b) === want);
    const chosen = idx >= 0 ? enabled[idx]! : a;
    s = model.next(s, chosen);
    actions.push(chosen);
    indices.push(idx);
    states.push(s);
  }
  return { states, actions, indices };
}

/** The fingerprint of a state as 16 hex digits (to confirm a replayed violation). */
export function stateFingerprint<S, A>(model: Model<S, A>, s: S): string {
  const fp = new Uint32Array(2);
  fingerprintInto(model.encode(s), fp);
  return fingerprintHex(fp[0]!, fp[1]!);
}

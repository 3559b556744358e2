// A toy model for the engine tests: two bounded counters a and b.
// Actions: inc-a, inc-b, swap (when a != b), and reset, which is listed in
// actionKinds but only enabled when a > max, i.e. never (to test neverFired).
// The canonical encoding is [min, max], so (a, b) and (b, a) are one state:
// the same reduction the kernel model makes for interchangeable processes.
// Every property is symmetric, so that reduction is sound for them.

import { ParseError, type Model, type Property } from '../src/engine/model.ts';

export interface Counters {
  readonly a: number;
  readonly b: number;
}

export type ToyKind = 'inc-a' | 'inc-b' | 'swap' | 'reset';
export interface ToyAction {
  readonly kind: ToyKind;
}

export interface ToyOptions {
  /** Bound of each counter (default 4). */
  max?: number;
  /** Identify (a, b) with (b, a) in the encoding (default true). */
  symmetric?: boolean;
  /** Attach the planted properties (default true). */
  properties?: boolean;
  /** Also the planted transition property no-swap-1-2 (default false). */
  transition?: boolean;
}

/**
 * A planted transition property: swapping {1, 2} is a violation. Its
 * successor is its own parent under the symmetric encoding, a state already
 * visited: only a check of every generated transition finds it (depth 4).
 */
export const NO_SWAP_1_2: Property<Counters, ToyAction> = {
  id: 'no-swap-1-2',
  description: 'never swap 1 and 2',
  rule: 'planted',
  when: 'transition',
  check: () => [],
  checkTransition: (before, a) => (a.kind === 'swap' && lo(before) === 1 && hi(before) === 2 ? ['swapped 1 and 2'] : []),
};

const lo = (s: Counters): number => Math.min(s.a, s.b);
const hi = (s: Counters): number => Math.max(s.a, s.b);

/**
 * Planted bugs, with their shortest depths (for max >= 4):
 * - no-0-4 (always): {a, b} = {0, 4} — first at depth 4;
 * - no-2-3 (quiescent): {a, b} = {2, 3} — first at depth 5;
 * - not-finished (end): every final state violates it — first at depth 2*max.
 */
export const TOY_PROPERTIES: readonly Property<Counters>[] = [
  {
    id: 'no-0-4',
    description: 'the counters are never {0, 4}',
    rule: 'toy',
    when: 'always',
    check: (s) => (lo(s) === 0 && hi(s) === 4 ? [`a=${s.a} b=${s.b}`] : []),
  },
  {
    id: 'no-2-3',
    description: 'the counters are never {2, 3}',
    rule: 'toy',
    when: 'quiescent',
    check: (s) => (lo(s) === 2 && hi(s) === 3 ? [`a=${s.a} b=${s.b}`, 'second detail line'] : []),
  },
  {
    id: 'not-finished',
    description: 'an end property: fails at every final state',
    rule: 'toy',
    when: 'end',
    check: (s) => [`finished at a=${s.a} b=${s.b}`],
  },
];

const ACTIONS: Record<ToyKind, ToyAction> = {
  'inc-a': { kind: 'inc-a' },
  'inc-b': { kind: 'inc-b' },
  swap: { kind: 'swap' },
  reset: { kind: 'reset' },
};

export function toyModel(options: ToyOptions = {}): Model<Counters, ToyAction> {
  const max = options.max ?? 4;
  const symmetric = options.symmetric ?? true;
  return {
    name: `toy-${max}${symmetric ? '' : '-asym'}`,
    initial: () => ({ a: 0, b: 0 }),
    actions(s) {
      const out: ToyAction[] = [];
      if (s.a < max) out.push(ACTIONS['inc-a']);
      if (s.b < max) out.push(ACTIONS['inc-b']);
      if (s.a !== s.b) out.push(ACTIONS.swap);
      if (s.a > max) out.push(ACTIONS.reset);
      return out;
    },
    next(s, a) {
      switch (a.kind) {
        case 'inc-a':
          return { a: s.a + 1, b: s.b };
        case 'inc-b':
          return { a: s.a, b: s.b + 1 };
        case 'swap':
          return { a: s.b, b: s.a };
        case 'reset':
          return { a: 0, b: 0 };
      }
    },
    encode: (s) => Int32Array.of(symmetric ? lo(s) : s.a, symmetric ? hi(s) : s.b),
    formatAction: (_s, a) => a.kind,
    parseAction(_s, text) {
      const t = text.trim();
      if (t in ACTIONS) return ACTIONS[t as ToyKind];
      throw new ParseError(`unknown operation "${t}"`);
    },
    actionKind: (a) => a.kind,
    isQuiescent: () => true,
    isFinal: (s) => s.a === max && s.b === max,
    properties: [...(options.properties === false ? [] : TOY_PROPERTIES), ...(options.transition ? [NO_SWAP_1_2] : [])],
    actionKinds: ['inc-a', 'inc-b', 'swap', 'reset'],
  };
}

/**
 * A combination lock for simulate's milestones: the state is how many
 * digits of the combination (all 0) have been entered in a row; a wrong
 * digit (1 to 3) starts over. `opened` is violated once all `digits` are
 * entered, `half-open` once half of them are: a walk from the half-open
 * state needs half the luck of one from the start.
 */
export interface LockState {
  readonly entered: number;
}
export interface LockAction {
  readonly digit: number;
}
const DIGITS: readonly LockAction[] = [0, 1, 2, 3].map((digit) => ({ digit }));

export function lockModel(options: { digits: number }): Model<LockState, LockAction> {
  const { digits } = options;
  const half = Math.floor(digits / 2);
  return {
    name: `lock-${digits}`,
    initial: () => ({ entered: 0 }),
    actions: () => [...DIGITS],
    next: (s, a) => ({ entered: a.digit === 0 ? s.entered + 1 : 0 }),
    encode: (s) => Int32Array.of(s.entered),
    formatAction: (_s, a) => `digit ${a.digit}`,
    parseAction(_s, text) {
      const m = /^digit ([0-3])$/.exec(text.trim());
      if (m === null) throw new ParseError(`unknown operation "${text}"`);
      return DIGITS[Number(m[1])]!;
    },
    actionKind: () => 'digit',
    isQuiescent: () => true,
    isFinal: () => false,
    properties: [
      { id: 'opened', description: 'the lock never opens', rule: 'planted', when: 'always', check: (s) => (s.entered >= digits ? [`${s.entered} digits entered`] : []) },
      { id: 'half-open', description: 'never half the combination', rule: 'planted', when: 'always', check: (s) => (s.entered >= half ? [`${s.entered} digits entered`] : []) },
    ],
    actionKinds: ['digit'],
  };
}

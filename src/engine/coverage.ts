// Shared by the single-thread and the parallel explorer: coverage counters
// by action kind, and the grouping of a state's violations by property.
import type { Model, Violation } from './model.ts';
import type { Coverage, Found } from './explorer.ts';

/**
 * Counters indexed by kind slot, so the search loop does one Map lookup and
 * two array increments per successor. model.actionKinds come first, in order.
 */
export class KindCounters {
  readonly names: string[] = [];
  readonly fired: number[] = [];
  readonly produced: number[] = [];
  private readonly slots = new Map<string, number>();

  constructor(kinds: readonly string[]) {
    for (const k of kinds) this.slotOf(k);
  }

  slotOf(kind: string): number {
    let k = this.slots.get(kind);
    if (k === undefined) {
      k = this.names.length;
      this.slots.set(kind, k);
      this.names.push(kind);
      this.fired.push(0);
      this.produced.push(0);
    }
    return k;
  }

  coverage(): Record<string, Coverage> {
    const c: Record<string, Coverage> = {};
    for (let k = 0; k < this.names.length; k++) c[this.names[k]!] = { fired: this.fired[k]!, newStates: this.produced[k]! };
    return c;
  }

  /** Kinds the model offers that never fired. */
  neverFired<S, A>(model: Model<S, A>): string[] {
    return model.actionKinds.filter((k) => this.fired[this.slots.get(k)!] === 0);
  }
}

/**
 * Append to `found` one record per property violated by a state (its detail
 * lines together), skipping properties not in `remaining` and removing the
 * recorded ones from it. Returns true when anything was recorded.
 */
export function recordViolations(
  found: Found[],
  remaining: Set<string> | undefined,
  vs: readonly Violation[],
  at: Omit<Found, 'property' | 'details'>,
): boolean {
  const byProperty = new Map<string, string[]>();
  for (const v of vs) {
    if (remaining && !remaining.has(v.property)) continue;
    const list = byProperty.get(v.property);
    if (list) list.push(v.detail);
    else byProperty.set(v.property, [v.detail]);
  }
  for (const [property, details] of byProperty) {
    found.push({ property, details, ...at });
    remaining?.delete(property);
  }
  return byProperty.size > 0;
}

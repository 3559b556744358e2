// Every property of the anon rmap model, in a stable order (DESIGN.md §4).
// fork-reuse-rule, walker-sees-every-mapping, failure-atomic, no-deadlock,
// lock-discipline and relocate-exclusive need history or threads and are not
// here yet.
import type { Property } from '../src/engine/model.ts';
import type { State } from '../models/mm/state.ts';
import { closeNeverRemoved, forkReuseRule, kernelAsserts, relocateExclusive } from './asserts.ts';
import {
  chainClosedUnderParent,
  chainTreeConsistent,
  ownAnonVmaLinked,
  sameAnonVmaSameChain,
  singleRoot,
  treeKeysFresh,
} from './chains.ts';
import { countersExact } from './counters.ts';
import { exclusiveMeansSingle, mapcountExact, pgoffLinear, rmapCoverage } from './folios.ts';
import { noLeak, noUseAfterFree } from './lifetime.ts';

export const ALL_PROPERTIES: Property<State>[] = [
  rmapCoverage,
  chainTreeConsistent,
  ownAnonVmaLinked,
  singleRoot,
  chainClosedUnderParent,
  sameAnonVmaSameChain,
  countersExact,
  mapcountExact,
  exclusiveMeansSingle,
  treeKeysFresh,
  pgoffLinear,
  noUseAfterFree,
  forkReuseRule,
  closeNeverRemoved,
  relocateExclusive,
  noLeak,
  kernelAsserts,
];

export function propertyById(id: string): Property<State> | undefined {
  return ALL_PROPERTIES.find((p) => p.id === id);
}

export { i6Counters, type Counters } from './counters.ts';
export { CLOSE_REMOVED, FORK_REUSE, RELOCATE_SHARED } from './asserts.ts';

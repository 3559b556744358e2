// Every property of the anon rmap model, in a stable order (DESIGN.md §4).
// no-deadlock needs the model's transition relation: the model replaces it
// at lock granularity (properties/deadlock.ts). failure-atomic and range-exact
// are transition properties (properties/transitions.ts).
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
import { lockDiscipline, walkerSeesEveryMapping } from './locking.ts';
import { noDeadlock } from './deadlock.ts';
import { userView } from './user.ts';
import { failureAtomic, rangeExact } from './transitions.ts';

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
  walkerSeesEveryMapping,
  noDeadlock,
  lockDiscipline,
  noLeak,
  kernelAsserts,
  userView,
  failureAtomic,
  rangeExact,
];

export function propertyById(id: string): Property<State> | undefined {
  return ALL_PROPERTIES.find((p) => p.id === id);
}

export { i6Counters, type Counters } from './counters.ts';
export { CLOSE_REMOVED, FORK_REUSE, RELOCATE_SHARED } from './asserts.ts';

// The mm model as a serialisable spec, for the parallel explorer's worker
// threads (src/engine/spec.ts): the variant (a built-in name or a file),
// the bounds given and the properties checked.
import { setAutoFreeze } from 'immer';
import type { ModelSpec } from '../engine/spec.ts';
import { makeModel, type Bounds, type MmModel, type ModelOptions } from './common.ts';

export interface MmSpec {
  variant: string;
  bounds: Partial<Bounds>;
  only?: string[];
  /** Debug and measurement options of the model (--check-immutability; the bench's immer baseline). */
  options?: ModelOptions;
}

/** The worker side: build the model (states are never mutated after produce, so immer need not freeze them). */
export async function buildMmModel(spec: MmSpec): Promise<MmModel> {
  setAutoFreeze(false);
  return makeModel(spec.variant, spec.bounds, spec.only, spec.options);
}

export function mmModelSpec(spec: MmSpec): ModelSpec {
  return { module: import.meta.url, export: 'buildMmModel', args: spec };
}

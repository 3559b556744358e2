// How a worker thread rebuilds a model: the engine cannot send a Model (it
// holds functions), so the caller names a module and one of its exports, a
// factory called with serialisable arguments (sync or async). The engine
// does not know what the factory builds.
import type { Model } from './model.ts';

export interface ModelSpec {
  /** URL (file:) of the module. */
  module: string;
  /** Name of the factory export. */
  export: string;
  /** Its argument; must survive structured cloning. */
  args: unknown;
}

export async function buildModel<S = unknown, A = unknown>(spec: ModelSpec): Promise<Model<S, A>> {
  const mod = (await import(spec.module)) as Record<string, unknown>;
  const factory = mod[spec.export];
  if (typeof factory !== 'function') throw new Error(`model spec: ${spec.module} has no function export "${spec.export}"`);
  return (await (factory as (args: unknown) => Model<S, A> | Promise<Model<S, A>>)(spec.args));
}

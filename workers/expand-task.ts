// The task handler of a parallel-explorer worker: it rebuilds the model once
// from the serialisable spec the pool was created with (piscina's
// workerData), then expands the batches it is sent (src/engine/expand.ts)
// and transfers the result buffers back.
import { Piscina } from 'piscina';
import { ExpandContext, expandBatch, resultBuffers, warmUp, type ExpandTask, type WarmUpTask } from '../src/engine/expand.ts';
import { buildModel, type ModelSpec } from '../src/engine/spec.ts';

let context: Promise<ExpandContext<unknown, unknown>> | undefined;

export default async function expand(task: ExpandTask | WarmUpTask): Promise<unknown> {
  context ??= buildModel(Piscina.workerData as ModelSpec).then((m) => new ExpandContext(m));
  const ctx = await context;
  if ('warmup' in task) return warmUp(task);
  const r = expandBatch(ctx, task);
  return Piscina.move({ [Piscina.transferableSymbol]: resultBuffers(r), [Piscina.valueSymbol]: r } as never);
}

// The task handler of a simulate worker: it rebuilds the model, the root
// (after the --from prefix) and the swarm once from piscina's workerData,
// then runs the batches of walks it is sent (src/engine/simulate.ts).
import { Piscina } from 'piscina';
import { runWalks, walkContext, type SimulateWorkerData, type WalkBatch, type WalkBatchResult, type WalkContext } from '../src/engine/simulate.ts';

let context: Promise<WalkContext<unknown, unknown>> | undefined;

export default async function walks(task: WalkBatch): Promise<WalkBatchResult> {
  context ??= walkContext(Piscina.workerData as SimulateWorkerData);
  return runWalks(await context, task);
}

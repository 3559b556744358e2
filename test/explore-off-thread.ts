// explore() in a worker thread, for tests whose search takes a minute on a
// loaded machine: a synchronous search in the test's own thread would stall
// vitest's RPC with its main process (issue 14). The worker runs the
// compiled exploration module (dist/, rebuilt by the suite's global setup
// when stale), the same code as the sources: vite's transform of the test
// files does not reach a worker thread.
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ExploreJob, WorkerMessage } from '../src/cli/exploration.ts';
import type { Bounds } from '../models/mm/model.ts';

const MODULE = resolve(import.meta.dirname, '..', 'dist', 'src', 'cli', 'exploration.js');

export interface OffThreadJob {
  variant: string;
  bounds: Partial<Bounds>;
  depth: number;
  only?: string[];
  fromTexts?: string[];
  stopAtFirst?: boolean;
}

export function exploreOffThread(j: OffThreadJob) {
  const job: ExploreJob = {
    kind: 'mmcheck-explore',
    variant: j.variant,
    bounds: j.bounds,
    depth: j.depth,
    stopAtFirst: j.stopAtFirst ?? true,
    fromTexts: j.fromTexts ?? [],
    progressMs: 3_600_000,
    ...(j.only !== undefined ? { only: j.only } : {}),
    stop: new SharedArrayBuffer(4),
  };
  return new Promise<Extract<WorkerMessage, { type: 'done' }>['result']>((done, fail) => {
    const w = new Worker(MODULE, { workerData: job });
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'done') done(m.result);
      else if (m.type === 'error') fail(new Error(`${m.name}: ${m.message}`));
    });
    w.on('error', fail);
    w.on('exit', () => fail(new Error('the exploration worker exited without a result')));
  });
}

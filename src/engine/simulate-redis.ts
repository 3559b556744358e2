// Random and swarm walks on `mmcheck worker` processes through Redis
// (`mmcheck simulate --redis URL`, issue 16): the schedule and the results
// of the threaded simulate (walkSearch, src/engine/simulate.ts) with the
// batches of walks run as BullMQ jobs of a run (src/engine/redis-run.ts).
// A walk draws everything from (seed, walk index), so the violation found,
// its trace and the counts are those of the threaded simulate with the
// same seed and walk budget, whatever the number of workers and machines.
// A batch is small (its walks and hits, as JSON): it travels as the job's
// data and return value, with no keys of its own.
import type { Job } from 'bullmq';
import { DistributedError } from './redis.ts';
import { RedisRun, type Accepted, type RunOptions, type ServeContext } from './redis-run.ts';
import { checkBudget, SIMULATE_WORKER_FILE, walkSearch, type SimulateResult, type SimulateWorkerData, type WalkBatch, type WalkBatchResult, type WalkRunner, type WalkSearchOptions } from './simulate.ts';

/** Batches queued at once (each holds its workers' threads for a fraction of a second). */
const SLOTS = 64;

export type DistributedSimulateOptions = WalkSearchOptions & Omit<RunOptions, 'kind'>;

export interface DistributedSimulateResult extends SimulateResult {
  /** Jobs BullMQ found stalled (their worker died or hung) and moved back to be run again. */
  redone: number;
}

export async function simulateDistributed(options: DistributedSimulateOptions): Promise<DistributedSimulateResult> {
  checkBudget(options);
  const t0 = performance.now();
  const run = await RedisRun.open({ ...options, kind: 'simulate' });
  const pending = new Map<string, { resolve(r: WalkBatchResult): void; reject(e: unknown): void }>();
  const settle = (jobId: string, r: WalkBatchResult | Error): void => {
    const p = pending.get(jobId);
    if (!p) return;
    pending.delete(jobId);
    if (r instanceof Error) p.reject(r);
    else p.resolve(r);
  };
  run.on = {
    completed: (jobId, value) => settle(jobId, value as WalkBatchResult),
    failed: (jobId, why) => settle(jobId, new DistributedError(`walks ${jobId} failed on every attempt: ${why}`)),
  };
  const failAll = (e: unknown): void => {
    for (const id of [...pending.keys()]) settle(id, e instanceof Error ? e : new Error(String(e)));
  };
  run.link.fatal.catch(failAll);
  let ticks = 0;
  const ticker = setInterval(() => {
    run.lookAround();
    // Every 2 s, completions whose event was missed (a reconnection of the events stream).
    if (++ticks % 8 !== 0) return;
    for (const id of pending.keys())
      void run.queue.getJob(id).then((job) => {
        if (job?.finishedOn !== undefined && job.returnvalue !== undefined && job.returnvalue !== null) settle(id, job.returnvalue as WalkBatchResult);
      }, () => {});
  }, 250);
  const runner: WalkRunner = {
    slots: SLOTS,
    run: (task) =>
      new Promise<WalkBatchResult>((resolve, reject) => {
        const jobId = `w-${task.first}`;
        pending.set(jobId, { resolve, reject });
        // Retries for errors a worker may not repeat (a lost connection); a batch that keeps failing fails the run.
        run.link.guard(run.queue.add('walks', task, { jobId, attempts: 3, backoff: { type: 'fixed', delay: 500 } })).catch((e: unknown) => settle(jobId, e as Error));
      }),
    // Batches in flight on other machines cannot be stopped: their walks are not waited for, and not counted.
    interrupt: () => {
      for (const id of [...pending.keys()]) settle(id, { first: Number(id.slice(2)), steps: [], hits: [] });
    },
  };
  try {
    const r = await walkSearch(runner, options, t0, 0);
    return { ...r, workers: run.seenWorkers.size, redone: run.redone };
  } finally {
    clearInterval(ticker);
    await run.close();
  }
}

/** How a worker process serves a 'simulate' run (the model and swarm resolved on this machine). */
export function walkService(data: SimulateWorkerData): Accepted {
  return { file: SIMULATE_WORKER_FILE, workerData: data, handler: walkJobs };
}

function walkJobs(ctx: ServeContext): (job: Job) => Promise<WalkBatchResult> {
  return async (job: Job): Promise<WalkBatchResult> => {
    const r = (await ctx.pool.run(job.data as WalkBatch)) as WalkBatchResult;
    if (ctx.delayMs) {
      ctx.log(`holding walks ${job.id ?? '?'} of run ${ctx.d.key} for ${ctx.delayMs} ms (--delay-ms)`);
      await new Promise((res) => setTimeout(res, ctx.delayMs));
    }
    return r;
  };
}

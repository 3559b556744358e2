// The level-synchronous BFS across machines, with Redis as the transport
// (DESIGN.md §5, issue 16): the results of the single-thread explorer
// (src/engine/explorer.ts) and of the thread pool (src/engine/parallel.ts)
// for any number of worker processes on any number of machines.
//
// Design (a) of the issue, a coordinator that owns the visited set (why, with
// figures: README, "Across machines"):
//   - The coordinator keeps the visited set, the parent links and the
//     frontier in the level driver (src/engine/levels.ts), as the thread
//     pool does. Per level it appends the level's new fingerprints (8 bytes
//     each) to a Redis list, writes the frontier cut into batches of packed
//     states to Redis keys, and queues one BullMQ job per batch on its run
//     (src/engine/redis-run.ts).
//   - A worker process (`mmcheck worker`) keeps a replica of the visited set
//     built from that list, and expands each batch with expandBatch
//     (src/engine/expand.ts) on its own piscina threads (workers/expand.mjs):
//     a successor already visited is dropped there, and so is one that a
//     batch of the same level in the same process reached from a smaller
//     frontier position (a level table per process and level). It
//     writes the rest (packed, with parent position, action, fingerprint and
//     violations) to a Redis key and completes the job.
//   - The driver merges the batches in frontier order: the first batch
//     (smallest parent position, then action) to bring a fingerprint owns it,
//     which is the successor the single-thread BFS records. So state indices,
//     parent links, violations and traces do not depend on the number of
//     workers, on the batch size or on which worker ran which batch.
//   - Whoever runs a batch, its result holds every successor for which the
//     batch has the smallest frontier position of the level (no table
//     anywhere can hold a smaller one), so a batch run twice (a worker
//     killed mid-batch, its job moved back by BullMQ's stalled-job check and
//     run elsewhere) brings the same owners; the others are dropped at the
//     merge. The coordinator takes the first result of each job.
//
// The run's own keys (besides src/engine/redis-run.ts's):
//   run:<key>:fps             list of fingerprint chunks (hi, lo uint32 pairs)
//   run:<key>:b:<level>:<b>   a batch (v8-serialized { first, bytes, offsets })
//   run:<key>:r:<level>:<b>   its result (v8-serialized LevelBatch)
import { deserialize, serialize } from 'node:v8';
import type { Job } from 'bullmq';
import type { Model } from './model.ts';
import { VisitedSet } from './visited.ts';
import { LevelTable } from './leveltable.ts';
import type { ExpandResult, ExpandTask } from './expand.ts';
import { LevelSearch, levelBatch, type LevelBatch, type LevelExpander, type LevelOptions, type LevelResult, type LevelView } from './levels.ts';
import { WORKER_FILE } from './parallel.ts';
import type { ModelSpec } from './spec.ts';
import { DistributedError } from './redis.ts';
import { RedisRun, runKeyOf, type Accepted, type RunOptions, type ServeContext } from './redis-run.ts';

/** Most states in one batch: large enough that a job's Redis round trips are a few per cent of its work. */
const MAX_BATCH = 256;
/** Batches queued ahead of the merge (bounds the frontier copies in Redis). */
const WINDOW = 256;
/** Fingerprints per chunk of the run's fingerprint list. */
const FPS_CHUNK = 1 << 20;
const RESULT_TTL_S = 3600;

export interface DistributedOptions<S> extends LevelOptions<S>, Omit<RunOptions, 'kind'> {}

export interface DistributedResult<A, S> extends LevelResult<A, S> {
  /** Worker processes seen serving the run. */
  workers: number;
  workerProcesses: number;
  /** Always 0: the workers start before the run. */
  startupMs: number;
  /** Bytes the coordinator wrote to Redis (batches, fingerprints) and read back (results). */
  bytesOut: number;
  bytesIn: number;
  /** Jobs BullMQ found stalled (their worker died or hung) and moved back to be run again. */
  redone: number;
}

interface JobData {
  level: number;
  b: number;
  /** Fingerprint chunks the worker's replica must hold (every level up to this one). */
  chunks: number;
  check?: string[];
  /** false: the level's successors are never expanded, so they are not packed (LevelView.keep). */
  keep: boolean;
}

/** Fingerprints (hi, lo pairs) as chunks of the run's list. */
function fingerprintChunks(pairs: Uint32Array): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < pairs.length; i += FPS_CHUNK * 2) {
    const part = pairs.subarray(i, Math.min(pairs.length, i + FPS_CHUNK * 2));
    out.push(Buffer.from(part.buffer, part.byteOffset, part.byteLength));
  }
  return out;
}

// ------------------------------------------------------------------ coordinator

export async function exploreDistributed<S, A>(model: Model<S, A>, options: DistributedOptions<S>): Promise<DistributedResult<A, S>> {
  // Bad options are found before Redis is contacted.
  const search = new LevelSearch(model, options, false);
  const run = await RedisRun.open({ ...options, kind: 'explore' });
  try {
    const result = await search.run(new RedisExpander(run, search.visitedPairs()));
    const seen = run.seenWorkers.size;
    return { ...result, workers: seen, workerProcesses: seen, startupMs: 0, bytesOut: run.bytesOut, bytesIn: run.bytesIn, redone: run.redone };
  } finally {
    await run.close();
  }
}

/** Steps 1 and 2 of a level on the run's workers. */
class RedisExpander implements LevelExpander {
  /** Fingerprint chunks published. */
  private chunks = 0;

  constructor(
    private readonly run: RedisRun,
    /** Fingerprints not yet published to the workers (at first, all). */
    private unpublished: Uint32Array,
  ) {}

  merged(fresh: Uint32Array): void {
    this.unpublished = fresh;
  }

  private async publish(): Promise<void> {
    const { run } = this;
    const parts = fingerprintChunks(this.unpublished);
    if (parts.length > 0) {
      await run.link.guard(run.redis.rpush(runKeyOf(run.key, ':fps'), ...parts));
      for (const p of parts) run.bytesOut += p.length;
      this.chunks += parts.length;
    }
    this.unpublished = new Uint32Array(0);
  }

  async expand(view: LevelView): Promise<'stop' | 'memory' | undefined> {
    const { run } = this;
    const { link, key } = run;
    const r = run.redis;
    await this.publish();
    const { frontier, level, check, keep } = view;
    const chunks = this.chunks;
    const n = frontier.length;
    const live = Math.max(1, run.seenWorkers.size);
    const size = Math.max(1, Math.min(MAX_BATCH, Math.ceil(n / (live * 8))));
    const nb = Math.ceil(n / size);
    // Without a level table of its own, the driver merges the level once every batch is in.
    view.begin(nb, size);
    const got: boolean[] = new Array<boolean>(nb).fill(false);
    let levelGenerated = 0;
    let done = 0;
    let queued = 0;
    const fetching = new Set<number>();
    const batchOf = (jobId: string): number | undefined => {
      const m = /^(\d+)-(\d+)$/.exec(jobId);
      return m && Number(m[1]) === level ? Number(m[2]) : undefined;
    };
    const stopped = await new Promise<'stop' | 'memory' | undefined>((resolve, reject) => {
      let finished = false;
      const finish = (v: 'stop' | 'memory' | undefined, e?: unknown): void => {
        if (finished) return;
        finished = true;
        clearInterval(ticker);
        run.on = {};
        if (e !== undefined) reject(e);
        else resolve(v);
      };
      link.fatal.catch((e: unknown) => finish(undefined, e));
      const enqueue = (): void => {
        const upto = Math.min(nb, done + fetching.size + WINDOW);
        if (queued >= upto) return;
        const from = queued;
        queued = upto;
        const pipe = r.pipeline();
        const jobs: { name: string; data: JobData; opts: object }[] = [];
        for (let b = from; b < upto; b++) {
          const start = b * size;
          const end = Math.min(n, start + size);
          const base = frontier.offsets[start]!;
          const offsets = new Uint32Array(end - start + 1);
          for (let i = 0; i <= end - start; i++) offsets[i] = frontier.offsets[start + i]! - base;
          const blob = serialize({ first: start, bytes: frontier.bytes.subarray(base, frontier.offsets[end]!), offsets });
          run.bytesOut += blob.length;
          pipe.set(runKeyOf(key, `:b:${level}:${b}`), blob);
          jobs.push({
            name: 'expand',
            data: { level, b, chunks, keep, ...(check ? { check } : {}) },
            // Retries for errors a worker may not repeat (a lost connection); a batch that keeps failing fails the run.
            opts: { jobId: `${level}-${b}`, attempts: 3, backoff: { type: 'fixed', delay: 500 }, removeOnComplete: true, removeOnFail: 100 },
          });
        }
        link
          .guard(pipe.exec().then(() => run.queue.addBulk(jobs)))
          .catch((e: unknown) => finish(undefined, e));
      };
      const onDone = (b: number): void => {
        if (got[b] || fetching.has(b)) return;
        fetching.add(b);
        link
          .guard(r.getBuffer(runKeyOf(key, `:r:${level}:${b}`)))
          .then(async (buf) => {
            if (buf === null) throw new DistributedError(`the result of batch ${b} of level ${level} is missing from Redis (evicted? give Redis enough maxmemory, policy noeviction)`);
            run.bytesIn += buf.length;
            const res = deserialize(buf) as LevelBatch;
            await link.guard(r.unlink(runKeyOf(key, `:r:${level}:${b}`)));
            fetching.delete(b);
            got[b] = true;
            view.deliver(b, res);
            done++;
            for (const c of res.fired) levelGenerated += c;
            if (done === nb) finish(undefined);
            else enqueue();
          })
          .catch((e: unknown) => finish(undefined, e));
      };
      run.on = {
        completed: (jobId) => {
          const b = batchOf(jobId);
          if (b !== undefined) onDone(b);
        },
        failed: (jobId, why) => {
          const b = batchOf(jobId);
          if (b === undefined || got[b] || fetching.has(b)) return;
          finish(undefined, new DistributedError(`batch ${b} of level ${level} failed on every attempt: ${why}`));
        },
      };
      let ticks = 0;
      const ticker = setInterval(() => {
        // Every 2 s, results whose completion event was missed (a reconnection of the events stream).
        if (++ticks % 8 === 0) {
          const waiting: number[] = [];
          for (let b = 0; b < queued && waiting.length < WINDOW; b++) if (!got[b] && !fetching.has(b)) waiting.push(b);
          if (waiting.length > 0) {
            const pipe = r.pipeline();
            for (const b of waiting) pipe.exists(runKeyOf(key, `:r:${level}:${b}`));
            void pipe.exec().then((rs) => rs?.forEach(([e, x], i) => !e && x === 1 && !finished && onDone(waiting[i]!)), () => {});
          }
        }
        const stop = view.poll(levelGenerated, n - done * size);
        if (stop) return finish(stop);
        run.lookAround();
      }, 250);
      enqueue();
    });
    // The level's batches (kept until now: a job may still be retried after its result was read).
    const drop = r.pipeline();
    for (let b = 0; b < queued; b++) drop.unlink(runKeyOf(key, `:b:${level}:${b}`));
    await link.guard(drop.exec());
    return stopped;
  }
}

// ------------------------------------------------------------------ worker

/** Per run served: the replica of the visited set and this process's level table. */
interface Replica {
  visited: VisitedSet;
  /** Fingerprint chunks applied to `visited`. */
  applied: number;
  /** Batches being expanded here. */
  inflight: number;
  /** The level table of this process's batches of one level. */
  table?: { level: number; table: LevelTable };
  /** Applying fingerprint chunks: jobs wait for it. */
  applying?: Promise<void>;
}

/** How a worker process serves an 'explore' run of `spec` (the model resolved on this machine). */
export function explorationService(spec: ModelSpec): Accepted {
  return { file: WORKER_FILE, workerData: spec, handler: expandJobs };
}

function expandJobs(ctx: ServeContext): (job: Job) => Promise<number> {
  const { link, d, pool } = ctx;
  const r = link.redis;
  const s: Replica = { visited: new VisitedSet(1 << 12, true), applied: 0, inflight: 0 };
  return async (job: Job): Promise<number> => {
    const { level, b, chunks, check, keep } = job.data as JobData;
    while (s.applied < chunks) {
      if (s.applying) {
        await s.applying;
        continue;
      }
      // New fingerprints: only once no batch of an earlier level is being expanded here.
      s.applying = (async () => {
        while (s.inflight > 0) await new Promise((res) => setTimeout(res, 5));
        const parts = await link.guard(r.lrangeBuffer(runKeyOf(d.key, ':fps'), s.applied, chunks - 1));
        for (const p of parts) {
          const pairs = new Uint32Array(p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength));
          for (let i = 0; i < pairs.length; i += 2) s.visited.insert(pairs[i]!, pairs[i + 1]!);
        }
        s.applied += parts.length;
      })().finally(() => (s.applying = undefined));
      await s.applying;
    }
    if (s.applied > chunks) throw new Error(`batch ${b} of level ${level} is from an earlier level than this worker's visited set`);
    s.inflight++;
    try {
      const buf = await link.guard(r.getBuffer(runKeyOf(d.key, `:b:${level}:${b}`)));
      if (buf === null) throw new Error(`batch ${b} of level ${level} is missing from Redis`);
      const batch = deserialize(buf) as { first: number; bytes: Uint8Array; offsets: Uint32Array };
      // One level table for this process's batches of the level, as the thread pool shares one: a
      // successor another batch here reached from a smaller position is not sent. The batch that
      // reaches a state from the smallest position always sends it, whatever ran here before, so
      // the merge's owners do not depend on which worker ran which batch. A full table is
      // replaced by an empty, larger one (forgetting only saves less).
      if (s.table?.level !== level) s.table = { level, table: LevelTable.create(1 << 15) };
      let res: ExpandResult;
      for (;;) {
        const table: LevelTable = s.table.table;
        const task: ExpandTask = { first: batch.first, bytes: batch.bytes, offsets: batch.offsets, visited: s.visited.keys.buffer as SharedArrayBuffer, table: table.buffer, keep: keep !== false, ...(check ? { check } : {}) };
        res = (await pool.run(task)) as ExpandResult;
        if (!res.full) break;
        if (s.table.table === table) s.table = { level, table: LevelTable.create(table.capacity * 2) };
      }
      const blob = serialize(levelBatch(res));
      if (ctx.delayMs) {
        ctx.log(`holding batch ${level}-${b} of run ${d.key} for ${ctx.delayMs} ms (--delay-ms)`);
        await new Promise((res) => setTimeout(res, ctx.delayMs));
      }
      await link.guard(r.set(runKeyOf(d.key, `:r:${level}:${b}`), blob, 'EX', RESULT_TTL_S));
      return blob.length;
    } finally {
      s.inflight--;
    }
  };
}

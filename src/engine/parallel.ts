// Level-synchronous BFS on worker threads (DESIGN.md §5), with the results
// of the single-thread explorer (src/engine/explorer.ts): the same distinct
// states per level, the same state indices and parent links, the same
// violations and traces, for any number of workers.
//
// Design (a) of the issue: one visited set shared by all workers in
// SharedArrayBuffers. Per level:
//   1. the frontier (packed states, in index order) is cut into batches of
//      consecutive states, sent to a piscina pool as transferable buffers;
//   2. a worker expands its batch (src/engine/expand.ts): a successor already
//      in the visited set (earlier levels; nobody writes it during a level)
//      is dropped; otherwise it is offered to the level table
//      (src/engine/leveltable.ts: compareExchange on the fingerprint slot,
//      atomic min of the parent's position), and sent back unless a parent
//      of smaller position already reached it;
//   3. the main thread merges the batches in order, each as soon as the
//      ones before it are (src/engine/levelmerge.ts), while the workers
//      expand the later ones: it takes each candidate that owns its
//      fingerprint (smallest parent position, then first action), which is
//      exactly the successor the single-thread BFS would have recorded
//      first, appends its parent link and its packed state to the next
//      frontier, and records its violations; the level's new states join
//      the visited set when the level is complete.
// Why (a) rather than owner-computes sharding (b): with (b) every generated
// successor (three quarters are duplicates) must be packed and routed to its
// owner before anyone knows whether it is new, and the canonical order must
// still be rebuilt across shards after the level; with (a) a worker decides
// locally whether a successor is new, so only the new states of a level,
// and the few duplicates that race with them, are packed and moved, and the
// canonical order is the batch order. (b) is the one that extends across
// machines; on one machine (a) moves less.
//
// Step 3, the start, the checkpoints and the result are the level driver's
// (src/engine/levels.ts), shared with the Redis coordinator; this module is
// the thread pool's expansion of a level (steps 1 and 2).

import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ParseError, type Model } from './model.ts';
import { LevelTable } from './leveltable.ts';
import type { ExpandResult, ExpandTask, WarmUpTask } from './expand.ts';
import { LevelSearch, levelBatch, type LevelOptions, type LevelResult, type LevelView } from './levels.ts';
import type { ModelSpec } from './spec.ts';

export const WORKER_FILE = fileURLToPath(new URL('../../workers/expand.mjs', import.meta.url));

/** Most states in one batch. */
const MAX_BATCH = 512;
/**
 * Successors a batch should generate: tens of milliseconds of a worker's
 * time. A level ends with one worker finishing its last batch while the
 * others wait, so a batch must be short; but each one costs a message and
 * a result's copy. With 512 states of the default bounds (25 to 70
 * successors each) a batch took 150-300 ms, and so could a level's end with
 * one worker idle; at 2,048 successors it is about 30 ms (default-5).
 */
const BATCH_SUCCESSORS = 2048;
/** Young generation of a worker thread, in MB (semi-spaces of about 2 MB). */
const YOUNG_GENERATION_MB = 6;

export interface ParallelOptions<S> extends LevelOptions<S> {
  /** Worker threads (>= 1). */
  workers: number;
  /** How a worker rebuilds the model (the same model as `model`). */
  spec: ModelSpec;
  /** Fingerprints each level table is first sized for (default: 4 times the last level); small values exercise its growth. */
  levelTableSize?: number;
}

export interface ParallelResult<A, S> extends LevelResult<A, S> {
  workers: number;
  /** Part of elapsedMs spent starting the pool (threads, model built in each). */
  startupMs: number;
}

export async function exploreParallel<S, A>(model: Model<S, A>, options: ParallelOptions<S>): Promise<ParallelResult<A, S>> {
  const { workers } = options;
  if (!Number.isInteger(workers) || workers < 1) throw new ParseError(`workers must be a positive integer, got ${workers}`);
  const search = new LevelSearch(model, options, true);
  const pool = new ThreadExpander(options);
  try {
    return { ...(await search.run(pool)), workers, startupMs: pool.startupMs };
  } finally {
    await pool.close();
  }
}

/** Steps 1 and 2 on a piscina pool, started at the first level that needs it. */
class ThreadExpander {
  startupMs = 0;
  /** Successors generated per state on the last level expanded (4 before the first). */
  private successorsPerState = 4;
  private pool: Piscina | undefined;

  constructor(private readonly options: ParallelOptions<unknown>) {}

  private async start(): Promise<Piscina> {
    const { workers } = this.options;
    const ts = performance.now();
    const pool = new Piscina({
      filename: WORKER_FILE,
      workerData: this.options.spec,
      minThreads: workers,
      maxThreads: workers,
      idleTimeout: 60_000,
      concurrentTasksPerWorker: 1,
      // A worker's objects die young (a transition's copies, a batch's
      // states): a small young generation costs no time and saves about
      // 30 MB of resident memory per worker (measured on spin-core).
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
    });
    this.pool = pool;
    const ready = new SharedArrayBuffer(4);
    await Promise.all(Array.from({ length: workers }, () => pool.run({ warmup: ready, workers } satisfies WarmUpTask)));
    this.startupMs = performance.now() - ts;
    return pool;
  }

  async close(): Promise<void> {
    if (this.pool) await this.pool.destroy();
  }

  async expand(view: LevelView): Promise<'stop' | 'memory' | undefined> {
    const { workers } = this.options;
    const { frontier, visited, check, keep } = view;
    const p = this.pool ?? (await this.start());
    const n = frontier.length;
    // Sized by the successors per state of the level before (the next is alike).
    const perBatch = Math.max(1, Math.round(BATCH_SUCCESSORS / this.successorsPerState));
    const size = Math.max(1, Math.min(MAX_BATCH, perBatch, Math.ceil(n / (workers * 8))));
    const nb = Math.ceil(n / size);
    let table = LevelTable.create(this.options.levelTableSize ?? Math.max(1024, view.lastLevelSize * 4));
    // The level table knows each fingerprint's owner (smallest parent position, then first action).
    view.begin(nb, size, (hi, lo, pos) => table.take(hi, lo, pos + 1));
    let levelGenerated = 0;
    let done = 0;
    return new Promise<'stop' | 'memory' | undefined>((resolve, reject) => {
      const queue: number[] = [];
      for (let b = nb - 1; b >= 0; b--) queue.push(b);
      let inFlight = 0;
      let grow = false;
      let stop: 'stop' | 'memory' | undefined;
      // A failed batch ends the level, but only once every batch in flight
      // has come back: the pool is destroyed next, and a worker answering a
      // task the pool no longer tracks crashes the whole process (piscina's
      // "Unexpected message from Worker", seen with --check-immutability).
      let failure: { e: unknown } | undefined;
      const settle = (): void => {
        if (failure !== undefined && inFlight === 0) reject(failure.e);
      };
      const fail = (e: unknown): void => {
        failure ??= { e };
        settle();
      };
      const pump = (): void => {
        if (failure !== undefined) return;
        stop ??= view.poll(levelGenerated, n - done * size);
        if (stop !== undefined) {
          if (inFlight === 0) resolve(stop);
          return;
        }
        if (grow) {
          if (inFlight > 0) return;
          table = table.grow();
          grow = false;
        }
        // Stopping at the first violation, the merge says which batches it still needs.
        const needed = view.needed();
        while (queue.length > 0 && queue[queue.length - 1]! >= needed) queue.pop();
        while (inFlight < workers * 2 && queue.length > 0) dispatch(queue.pop()!);
        if (inFlight === 0 && queue.length === 0) {
          if (n > 0 && levelGenerated > 0) this.successorsPerState = levelGenerated / n;
          resolve(undefined);
        }
      };
      const dispatch = (b: number): void => {
        const start = b * size;
        const end = Math.min(n, start + size);
        const base = frontier.offsets[start]!;
        const bytes = frontier.bytes.slice(base, frontier.offsets[end]!);
        const offsets = new Uint32Array(end - start + 1);
        for (let i = 0; i <= end - start; i++) offsets[i] = frontier.offsets[start + i]! - base;
        const task: ExpandTask = { first: start, bytes, offsets, visited: visited.keys.buffer as SharedArrayBuffer, table: table.buffer, keep, ...(check ? { check } : {}) };
        inFlight++;
        p.run(task, { transferList: [bytes.buffer, offsets.buffer] }).then(
          (r: ExpandResult) => {
            inFlight--;
            if (failure !== undefined) return settle();
            if (r.full) {
              grow = true;
              queue.push(b);
            } else {
              done++;
              levelGenerated += r.kinds.length;
              try {
                view.deliver(b, levelBatch(r));
              } catch (e) {
                fail(e);
                return;
              }
            }
            pump();
          },
          (e: unknown) => {
            inFlight--;
            fail(e);
          },
        );
      };
      pump();
    });
  }
}

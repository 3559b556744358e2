// Running the explorer for a command. `check` uses the parallel explorer
// (src/engine/parallel.ts): its pool of worker threads expands the states
// and this thread coordinates between batches, so it stays free to receive
// SIGINT. `gate` runs the synchronous single-thread explorer in one worker
// thread: the main thread stays free to receive SIGINT (which sets a shared
// flag the explorer polls through shouldStop), to print progress, and to
// survive the worker running out of memory.
import { setAutoFreeze } from 'immer';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { explore, replayTexts, type ExploreResult, type Progress } from '../engine/explorer.ts';
import { exploreParallel, type ParallelResult } from '../engine/parallel.ts';
import { exploreDistributed } from '../engine/distributed.ts';
import { parseRedisUrl } from '../engine/redis.ts';
import { identityOf } from './distributed.ts';
import type { Checkpoint } from '../engine/checkpoint.ts';
import type { State } from '../../models/mm/state.ts';
import { COMPILED, EXIT, PROGRESS_MS, ResultError, UsageError, type Bounds, type ModelOptions, type Op, makeModel, num, err } from './common.ts';
import { MUTATED_INPUT } from '../../models/mm/model.ts';
import { mmModelSpec } from './model-spec.ts';
import { Interrupts } from './interrupts.ts';
import { isVariantFile } from '../../models/variants/load.ts';
import type { RunOutcome, Store } from '../store/db.ts';
import { stateToJson } from '../report/json.ts';

/** How often the explorer reports to exploreAndRecord (which passes a report on every PROGRESS_MS). */
const ENGINE_PROGRESS_MS = 250;

export interface ExploreJob {
  kind: 'mmcheck-explore';
  variant: string;
  bounds: Partial<Bounds>;
  depth: number;
  stopAtFirst: boolean;
  fromTexts: string[];
  progressMs: number;
  /** Check only these properties (all when absent). */
  only?: string[];
  /** Model options (--check-immutability). */
  options?: ModelOptions;
  stop: SharedArrayBuffer;
}

/** Build the model and start state of a job and explore (in whichever thread calls it). */
export async function runJob(job: Omit<ExploreJob, 'kind' | 'stop'>, onProgress: (p: Progress) => void, shouldStop?: () => boolean): Promise<ExploreResult<Op, State>> {
  // States are never mutated after produce returns; freezing them only costs time (DESIGN.md §2).
  setAutoFreeze(false);
  const model = await makeModel(job.variant, job.bounds, job.only, job.options);
  const root = model.initial();
  const from = job.fromTexts.length > 0 ? replayTexts(model, root, job.fromTexts).states.at(-1) : undefined;
  return explore(model, {
    depth: job.depth,
    stopAtFirst: job.stopAtFirst,
    ...(from !== undefined ? { from, fromPrefix: job.fromTexts.length } : {}),
    progressMs: job.progressMs,
    onProgress,
    ...(shouldStop ? { shouldStop } : {}),
  });
}

export type WorkerMessage =
  | { type: 'progress'; progress: Progress }
  | { type: 'done'; result: ExploreResult<Op, State> }
  | { type: 'error'; name: string; message: string; stack?: string };

/** The worker side: rebuild the model, explore, post progress and the result. */
export async function workerMain(job: ExploreJob): Promise<void> {
  const port = parentPort!;
  try {
    const stop = new Int32Array(job.stop);
    const result = await runJob(
      job,
      (progress) => port.postMessage({ type: 'progress', progress } satisfies WorkerMessage),
      () => Atomics.load(stop, 0) !== 0,
    );
    port.postMessage({ type: 'done', result } satisfies WorkerMessage);
  } catch (e) {
    const x = e instanceof Error ? e : new Error(String(e));
    port.postMessage({ type: 'error', name: x.name, message: x.message, stack: x.stack } satisfies WorkerMessage);
  }
}

export interface Exploration {
  result?: ExploreResult<Op, State>;
  /** Set when the worker died (out of memory, a second Ctrl-C) or threw. */
  failure?: { message: string; code: number };
  lastProgress?: Progress;
}

/** Run the explorer in a worker thread; resolves when it finishes, fails, or is aborted. */
export function exploreInWorker(
  job: Omit<ExploreJob, 'kind' | 'stop'>,
  onProgress: (p: Progress) => void,
  signals: { stop: () => void; abort: () => void },
): Promise<Exploration> {
  const stop = new SharedArrayBuffer(4);
  const flag = new Int32Array(stop);
  // From the sources the worker needs tsx; compiled, it loads a TypeScript variant on demand (makeModel).
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const code = COMPILED
    ? `import(${JSON.stringify(import.meta.url)})`
    : `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(code, { eval: true, workerData: { ...job, kind: 'mmcheck-explore', stop } satisfies ExploreJob });
  const state: Exploration = {};
  signals.stop = () => Atomics.store(flag, 0, 1);
  return new Promise((resolve) => {
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      resolve(state);
    };
    signals.abort = () => {
      state.failure ??= { message: 'aborted by a second interrupt', code: EXIT.interrupted };
      void worker.terminate().then(settle);
    };
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') {
        state.lastProgress = m.progress;
        onProgress(m.progress);
      } else if (m.type === 'done') {
        state.result = m.result;
        settle();
      } else {
        const isInput = m.name === 'ParseError' || m.name === 'UsageError' || MUTATED_INPUT.test(m.message);
        state.failure = {
          message: isInput ? m.message : `internal error: ${m.message}${process.env.MMCHECK_DEBUG ? `\n${m.stack}` : ''}`,
          code: isInput ? EXIT.badInput : EXIT.internal,
        };
        settle();
      }
    });
    worker.on('error', (e: Error & { code?: string }) => {
      state.failure =
        e.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? { message: 'out of memory: lower --depth or the bounds (or raise node --max-old-space-size)', code: EXIT.internal }
          : { message: `internal error: ${e.message}`, code: EXIT.internal };
      settle();
    });
    worker.on('exit', () => {
      state.failure ??= state.result ? undefined : { message: 'internal error: the explorer stopped without a result', code: EXIT.internal };
      settle();
    });
  });
}

/** The same in this thread (MMCHECK_NO_WORKER=1, for debugging): the synchronous search cannot see Ctrl-C, which then kills the process and leaves the run 'running'. */
export async function exploreHere(job: Omit<ExploreJob, 'kind' | 'stop'>, onProgress: (p: Progress) => void): Promise<Exploration> {
  return { result: await runJob(job, onProgress) };
}

export function progressLine(p: Progress): string {
  return (
    `Progress(${p.depth}): ${num(p.generated)} states generated (${num(p.statesPerSec)} s/s), ` +
    `${num(p.distinct)} distinct states found, ${num(p.queue)} states left on queue, ` +
    `${num(p.heapMb)} MB, ${(p.elapsedMs / 1000).toFixed(0)} s`
  );
}

export { boundsText } from './common.ts';

// The worker thread's entry: this module, imported with the job as workerData.
const job = workerData as Partial<ExploreJob> | undefined;
if (!isMainThread && job?.kind === 'mmcheck-explore') void workerMain(job as ExploreJob);

export interface RecordJob {
  /** The command line, for the runs table. */
  command: string;
  variant: string;
  modelName: string;
  bounds: Bounds;
  /** The bounds given on the command line (the worker rebuilds the model from them). */
  given: Partial<Bounds>;
  depth: number;
  stopAtFirst: boolean;
  fromTexts: string[];
  /** Check only these properties (all when absent). */
  only?: string[];
  /** Model options (--check-immutability). */
  options?: ModelOptions;
  /** Explore on a pool of worker threads (src/engine/parallel.ts) instead of one exploration thread. */
  parallel?: ParallelJob;
  onStart?(runId: number): void;
  onProgress(p: Progress): void;
}

/** `check`'s --workers, --max-memory, --checkpoint-every and --resume. */
export interface ParallelJob {
  workers: number;
  maxMemoryMb?: number;
  /** Checkpoint at level boundaries at most this often (and when the search stops at one); none when absent. */
  checkpointEveryMs?: number;
  /** Where checkpoints live: <dir>/<db file name>-<run>.ckpt. */
  checkpointDir: string;
  /** The database the run is recorded in. */
  db: string;
  /** Continue this run from its checkpoint. */
  resume?: { runId: number; checkpoint: Checkpoint };
  /** Expand on `mmcheck worker` processes through Redis at this URL (src/engine/distributed.ts) instead of threads. */
  redis?: { url: string; onNote(message: string): void };
  /** The new run's start time in the database (set by exploreAndRecord), part of its checkpoints' identity. */
  startedAt?: string;
}

/** What a checkpoint records of the run, to rebuild the model and the start state on --resume. */
export interface CheckpointMeta {
  kind: 'mmcheck-check';
  /** Which run of which database this is, checked on --resume (issue 14: a checkpoint resumed into another database's run). */
  identity: CheckpointIdentity;
  variant: string;
  given: Partial<Bounds>;
  fromTexts: string[];
  stopAtFirst: boolean;
  only?: string[];
}

/**
 * A checkpoint's run: its number and start time in its database (two
 * databases have a run 1, not started at the same millisecond), the
 * database's path when it was written (for the message), and the content hash
 * of the variant file (a changed file is a different model).
 */
export interface CheckpointIdentity {
  db: string;
  run: number;
  startedAt: string;
  modelHash: string | null;
}

/** The checkpoint file of run `runId` of database `db`, in `dir`: named after both, as two databases may share a folder. */
export const checkpointPath = (dir: string, db: string, runId: number): string => join(dir, `${basename(db)}-${runId}.ckpt`);

/** sha256 of a variant file's content; null for a built-in model. */
export function modelHash(variant: string): string | null {
  if (!isVariantFile(variant)) return null;
  try {
    return createHash('sha256').update(readFileSync(variant)).digest('hex');
  } catch {
    return 'unreadable';
  }
}

/** The checkpoint's meta, checked. */
export function checkpointMeta(c: Checkpoint, runId: number): CheckpointMeta {
  const m = c.meta as Partial<CheckpointMeta> | null;
  if (m?.kind !== 'mmcheck-check' || typeof m.variant !== 'string') throw new UsageError(`the checkpoint of run ${runId} was not written by mmcheck check`);
  return m as CheckpointMeta;
}

export interface RecordedRun {
  runId: number;
  result: ExploreResult<Op, State> & Partial<Pick<ParallelResult<Op, State>, 'memoryLimit' | 'checkpoint' | 'checkpointLevel' | 'workers' | 'peakRssMb'>>;
  /** Database ids of result.violations, in order. */
  ids: number[];
  /** The replayable trace of each violation: the --from prefix, then the search's steps. */
  traces: string[][];
}

/**
 * Explore and record: the run is stored as 'running' first, then finished in
 * one transaction with its violations and coverage; Ctrl-C stops the search
 * and the run is recorded as interrupted (a second Ctrl-C aborts it).
 * A run that ends without a result is recorded and reported as ResultError.
 */
export async function exploreAndRecord(store: Store, job: RecordJob): Promise<RecordedRun> {
  const { bounds, depth, fromTexts } = job;
  const runId = store.startRun({
    command: job.command,
    model: 'mm',
    variant: job.variant,
    bounds: {
      ...bounds,
      // The model's own name, which its violations are recorded under: `list` shows runs by it too.
      modelName: job.modelName,
      depth,
      ...(fromTexts.length > 0 ? { from: fromTexts } : {}),
      ...(job.parallel?.resume ? { resumedFrom: job.parallel.resume.runId } : {}),
    },
    workers: job.parallel?.workers ?? 1,
    maxDepth: depth,
  });
  if (job.parallel) job.parallel.startedAt = store.getRun(runId)?.started_at ?? '';
  job.onStart?.(runId);
  const interrupts = new Interrupts();
  const signals = { stop: () => {}, abort: () => {} };
  const onSigint = (): void => {
    const action = interrupts.signal(performance.now());
    if (action === 'stop') {
      err('interrupted: stopping the search and recording the run (Ctrl-C again to abort now)');
      signals.stop();
    } else if (action === 'abort') signals.abort();
  };
  // SIGTERM (a CI timeout, `timeout`, systemd) stops the search the same way,
  // so the run is recorded instead of being left 'running'.
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  // The explorer reports often (ENGINE_PROGRESS_MS), so that an abort records
  // counts at most that old; the command hears every PROGRESS_MS.
  let lastProgress: Progress | undefined;
  let lastForwarded = -Infinity;
  const onProgress = (p: Progress): void => {
    lastProgress = p;
    if (p.elapsedMs - lastForwarded < PROGRESS_MS) return;
    lastForwarded = p.elapsedMs;
    job.onProgress(p);
  };
  if (job.parallel) {
    // The pool runs in this process: a second Ctrl-C records the run and exits at once.
    signals.abort = () => {
      store.finishRun(runId, {
        outcome: 'interrupted',
        generated: lastProgress?.generated ?? 0,
        distinct: lastProgress?.distinct ?? 0,
        depthReached: lastProgress?.depth ?? 0,
        durationMs: lastProgress?.elapsedMs ?? 0,
        error: `aborted by a second interrupt${lastProgress ? ` (counts as of ${(lastProgress.elapsedMs / 1000).toFixed(1)} s into the search)` : ' before the first level was expanded'}`,
      });
      err(`mmcheck: aborted by a second interrupt (run ${runId} recorded as interrupted)`);
      process.exit(EXIT.interrupted);
    };
  }
  const work = {
    variant: job.variant,
    bounds: job.given,
    depth,
    stopAtFirst: job.stopAtFirst,
    fromTexts,
    progressMs: ENGINE_PROGRESS_MS,
    ...(job.only !== undefined ? { only: job.only } : {}),
    ...(job.options !== undefined ? { options: job.options } : {}),
  };
  let ex: Exploration;
  try {
    if (job.parallel) ex = await exploreOnPool(work, job.parallel, runId, onProgress, signals);
    else ex = process.env.MMCHECK_NO_WORKER ? await exploreHere(work, onProgress) : await exploreInWorker(work, onProgress, signals);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  const r = ex.result;
  if (!r) {
    const p = ex.lastProgress;
    const outcome: RunOutcome = ex.failure?.code === EXIT.interrupted ? 'interrupted' : 'error';
    store.finishRun(runId, {
      outcome: outcome as Exclude<RunOutcome, 'running'>,
      generated: p?.generated ?? 0,
      distinct: p?.distinct ?? 0,
      depthReached: p?.depth ?? 0,
      durationMs: p?.elapsedMs ?? 0,
      error: ex.failure?.message.split('\n')[0] ?? 'unknown',
    });
    throw new ResultError(`${ex.failure?.message ?? 'internal error'} (run ${runId} recorded as ${outcome})`, ex.failure?.code ?? EXIT.internal);
  }
  const traces = r.violations.map((v) => [...fromTexts, ...v.traceText]);
  const limit = (r as RecordedRun['result']).memoryLimit;
  const ids = store.finishRun(runId, {
    outcome: r.outcome,
    ...(limit !== undefined ? { error: limit } : {}),
    generated: r.generated,
    distinct: r.distinct,
    depthReached: r.depthReached,
    durationMs: r.elapsedMs,
    coverage: r.coverage,
    violations: r.violations.map((v, i) => ({
      model: job.modelName,
      property: v.property,
      depth: v.depth,
      trace: traces[i]!,
      finalState: stateToJson(v.state, v.details.map((detail) => ({ property: v.property, detail }))),
      fingerprint: v.fingerprint,
      detail: v.detail,
    })),
  });
  return { runId, result: r, ids, traces };
}

/**
 * Explore on a pool of worker threads, coordinated from this thread (which
 * stays free for SIGINT between batches). A first Ctrl-C stops the search at
 * the next batch and keeps the last level boundary (checkpointed when
 * checkpoints are on); a second one ends the process at once, after
 * recording the run as interrupted.
 */
async function exploreOnPool(
  job: Omit<ExploreJob, 'kind' | 'stop'>,
  p: ParallelJob,
  runId: number,
  onProgress: (p: Progress) => void,
  signals: { stop: () => void; abort: () => void },
): Promise<Exploration> {
  let stop = false;
  const state: Exploration = {};
  signals.stop = () => (stop = true);
  try {
    setAutoFreeze(false);
    const model = await makeModel(job.variant, job.bounds, job.only, job.options);
    const from = job.fromTexts.length > 0 ? replayTexts(model, model.initial(), job.fromTexts).states.at(-1) : undefined;
    const startedAt = p.startedAt ?? '';
    const meta: CheckpointMeta = {
      kind: 'mmcheck-check',
      identity: { db: p.db, run: runId, startedAt, modelHash: modelHash(job.variant) },
      variant: job.variant,
      given: job.bounds,
      fromTexts: job.fromTexts,
      stopAtFirst: job.stopAtFirst,
      ...(job.only !== undefined ? { only: job.only } : {}),
    };
    const common = {
      depth: job.depth,
      stopAtFirst: job.stopAtFirst,
      ...(from !== undefined ? { from, fromPrefix: job.fromTexts.length } : {}),
      progressMs: job.progressMs,
      onProgress: (pr: Progress) => {
        state.lastProgress = pr;
        onProgress(pr);
      },
      shouldStop: () => stop,
      ...(p.maxMemoryMb !== undefined ? { maxMemoryMb: p.maxMemoryMb } : {}),
      ...(p.checkpointEveryMs !== undefined ? { checkpoint: { path: checkpointPath(p.checkpointDir, p.db, runId), everyMs: p.checkpointEveryMs, meta } } : {}),
      ...(p.resume ? { resume: p.resume.checkpoint } : {}),
    };
    const spec = { variant: job.variant, bounds: job.bounds, ...(job.only !== undefined ? { only: job.only } : {}), ...(job.options !== undefined ? { options: job.options } : {}) };
    state.result = p.redis
      ? await exploreDistributed(model, { ...common, target: parseRedisUrl(p.redis.url), spec, identity: identityOf(job.variant), onNote: p.redis.onNote })
      : await exploreParallel(model, { ...common, workers: p.workers, spec: mmModelSpec(spec) });
  } catch (e) {
    const x = e instanceof Error ? e : new Error(String(e));
    // A model that writes to its input state (--check-immutability) is a
    // defect of the variant given: bad input, said in one line.
    const isInput = x.name === 'ParseError' || x.name === 'UsageError' || MUTATED_INPUT.test(x.message);
    // Redis unreachable or lost: a resource failure, said as it is.
    const isInfra = x.name === 'DistributedError';
    state.failure = {
      message: isInput || isInfra ? x.message : `internal error: ${x.message}${process.env.MMCHECK_DEBUG ? `\n${x.stack}` : ''}`,
      code: isInput ? EXIT.badInput : EXIT.internal,
    };
  }
  return state;
}

/**
 * Explore a job on a pool of worker threads and return its result, without
 * recording it (mmcheck bugs); a failure is thrown as ResultError.
 */
export async function exploreJobOnPool(job: Omit<ExploreJob, 'kind' | 'stop'>, workers: number): Promise<ExploreResult<Op, State>> {
  const signals = { stop: () => {}, abort: () => {} };
  const ex = await exploreOnPool(job, { workers, checkpointDir: '', db: '' }, 0, () => {}, signals);
  if (ex.result === undefined) throw new ResultError(ex.failure?.message ?? 'internal error', ex.failure?.code ?? EXIT.internal);
  return ex.result;
}

// The level-synchronous BFS across machines, with Redis as the transport
// (DESIGN.md §5, issue 16): the results of the single-thread explorer
// (src/engine/explorer.ts) and of the thread pool (src/engine/parallel.ts)
// for any number of worker processes on any number of machines.
//
// Design (a) of the issue, a coordinator that owns the visited set (why, with
// figures: README, "Across machines"):
//   - The coordinator keeps the visited set, the parent links and the
//     frontier, exactly as the thread pool's main thread does. Per level it
//     appends the level's new fingerprints (8 bytes each) to a Redis list,
//     writes the frontier cut into batches of packed states (packState /
//     PackedList) to Redis keys, and queues one BullMQ job per batch.
//   - A worker process (`mmcheck worker`) keeps a replica of the visited set
//     built from that list, and expands each batch with expandBatch
//     (src/engine/expand.ts) on its own piscina threads (workers/expand.mjs):
//     a successor already visited is dropped there, and so is one that a
//     batch of the same level in the same process reached from a smaller
//     frontier position (a level table per process and level). It
//     writes the rest (packed, with parent position, action, fingerprint and
//     violations) to a Redis key and completes the job.
//   - The coordinator merges the batches in frontier order: the first batch
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
// Workers never receive code: a run's descriptor in Redis carries data only
// (the model's name or variant path, its bounds, the properties), the
// coordinator's mmcheck version and a content hash; the worker resolves the
// model locally (the caller's `accept`) and refuses the run when the version
// or its own hash differs.
//
// Redis keys (prefix `mmcheck:`; the BullMQ queue under `mmcheck:bull:`):
//   runs                      set of run keys in progress
//   run:<key>                 the descriptor (JSON)
//   run:<key>:alive           refreshed by the coordinator, expires 15 s after it dies
//   run:<key>:fps             list of fingerprint chunks (hi, lo uint32 pairs)
//   run:<key>:b:<level>:<b>   a batch (v8-serialized { first, bytes, offsets })
//   run:<key>:r:<level>:<b>   its result (v8-serialized, see BatchResult)
//   run:<key>:refused         hash: worker id -> why it refused the run
//   worker:<id>               a worker's heartbeat (JSON, expires in 10 s)
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { deserialize, serialize } from 'node:v8';
import { Piscina } from 'piscina';
import { Queue, QueueEvents, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { checkProperties, ParseError, type Model, type Violation } from './model.ts';
import { fingerprintInto } from './hash.ts';
import { VisitedSet } from './visited.ts';
import { ParentLinks } from './parents.ts';
import { LevelTable } from './leveltable.ts';
import { CAND_WORDS, type ExpandResult, type ExpandTask, type TransitionViolation } from './expand.ts';
import { packState, PackedList } from './pack.ts';
import { searchResult, type Found, type Outcome, type Progress } from './explorer.ts';
import { writeCheckpoint } from './checkpoint.ts';
import { KindCounters, recordViolations } from './coverage.ts';
import { WORKER_FILE, type ParallelOptions, type ParallelResult } from './parallel.ts';
import type { ModelSpec } from './spec.ts';
import { DistributedError, RedisLink, redactUrls, type RedisTarget } from './redis.ts';

const PREFIX = 'mmcheck:';
const BULL_PREFIX = 'mmcheck:bull';
/** Most states in one batch: large enough that a job's Redis round trips are a few per cent of its work. */
const MAX_BATCH = 256;
/** Batches queued ahead of the merge (bounds the frontier copies in Redis). */
const WINDOW = 256;
/** Fingerprints per chunk of the run's fingerprint list. */
const FPS_CHUNK = 1 << 20;
const ALIVE_MS = 8_000;
const RESULT_TTL_S = 3600;

/** Who runs the code: compared by a worker before it serves a run. */
export interface Identity {
  version: string;
  /** Content hashes of the code that defines the model's transitions and checks, by group. */
  hashes: Record<string, string>;
}

/** What the coordinator publishes about a run: data only, never code. */
export interface RunDescriptor {
  key: string;
  queue: string;
  /** The caller's description of the model (e.g. variant name or path, bounds, properties). */
  spec: unknown;
  identity: Identity;
  host: string;
}

export interface DistributedOptions<S> extends Omit<ParallelOptions<S>, 'workers' | 'spec'> {
  target: RedisTarget;
  /** The model as data, for the workers' `accept`. */
  spec: unknown;
  identity: Identity;
  /** Messages for the user (workers refusing the run, waiting for workers); redacted. */
  onNote?(message: string): void;
}

export interface DistributedResult<A, S> extends ParallelResult<A, S> {
  /** Bytes the coordinator wrote to Redis (batches, fingerprints) and read back (results). */
  bytesOut: number;
  bytesIn: number;
  /** Worker processes seen serving the run. */
  workerProcesses: number;
  /** Jobs BullMQ found stalled (their worker died or hung) and moved back to be run again. */
  redone: number;
}

/** What a worker writes back for one batch. */
interface BatchResult {
  cand: Int32Array;
  bytes: Uint8Array;
  offsets: Uint32Array;
  violations: { c: number; vs: Violation[] }[];
  /** Transition violations (ExpandResult's). */
  transitions: TransitionViolation[];
  kindNames: string[];
  /** Successors generated per kind (index into kindNames). */
  fired: number[];
  /** Only when the batch has violations (a stop at the first violation needs them): ExpandResult's counts and kinds. */
  counts?: Int32Array;
  kinds?: Uint16Array;
}

interface JobData {
  level: number;
  b: number;
  /** Fingerprint chunks the worker's replica must hold (every level up to this one). */
  chunks: number;
  check?: string[];
}

const runKeyOf = (key: string, rest = ''): string => `${PREFIX}run:${key}${rest}`;
const rssMb = (): number => process.memoryUsage.rss() / 2 ** 20;

function connectionOptions(target: RedisTarget): ConnectionOptions {
  return { ...target.options } as ConnectionOptions;
}

/** Delete the keys of a run (and its queue) that is over or whose coordinator died. */
async function dropRun(link: RedisLink, key: string, queue: string): Promise<void> {
  const r = link.redis;
  await r.srem(`${PREFIX}runs`, key);
  for (const pattern of [`${runKeyOf(key)}*`, `${BULL_PREFIX}:${queue}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.unlink(...keys);
    } while (cursor !== '0');
  }
}

/** Runs whose coordinator stopped refreshing them (killed): their keys are removed. */
async function dropDeadRuns(link: RedisLink): Promise<void> {
  for (const key of await link.redis.smembers(`${PREFIX}runs`)) {
    if ((await link.redis.exists(runKeyOf(key, ':alive'))) === 0) await dropRun(link, key, `run-${key}`);
  }
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

/** The non-empty slots of a visited set's keys, as pairs. */
function keysOf(keys: Uint32Array, size: number): Uint32Array {
  const out = new Uint32Array(size * 2);
  let n = 0;
  for (let s = 0; s < keys.length; s += 2) {
    if (keys[s] === 0 && keys[s + 1] === 0) continue;
    out[n++] = keys[s]!;
    out[n++] = keys[s + 1]!;
  }
  return out.subarray(0, n);
}

// ------------------------------------------------------------------ coordinator

export async function exploreDistributed<S, A>(model: Model<S, A>, options: DistributedOptions<S>): Promise<DistributedResult<A, S>> {
  const { depth, onProgress, shouldStop, maxMemoryMb, target } = options;
  const resume = options.resume;
  const stopAtFirst = resume ? resume.stopAtFirst : (options.stopAtFirst ?? true);
  const fromPrefix = resume ? resume.fromPrefix : (options.fromPrefix ?? 0);
  const progressMs = options.progressMs ?? 3000;
  const note = (m: string): void => options.onNote?.(redactUrls(m));
  if (!Number.isInteger(depth) || depth < 0) throw new ParseError(`depth must be a non-negative integer, got ${depth}`);
  if (!Number.isInteger(fromPrefix) || fromPrefix < 0 || fromPrefix > depth) {
    throw new ParseError(`the --from prefix has ${fromPrefix} actions, more than the depth ${depth}; raise --depth`);
  }
  if (resume && fromPrefix + resume.level > depth) {
    throw new ParseError(`the checkpoint is at depth ${fromPrefix + resume.level}, deeper than --depth ${depth}; raise --depth`);
  }
  const maxLevels = depth - fromPrefix;
  const t0 = performance.now();
  let lastProgress = t0;
  let peakRss = rssMb();
  const root = options.from ?? model.initial();

  const counters = new KindCounters(model.actionKinds);
  const { fired, produced } = counters;
  const slotOf = (kind: string): number => counters.slotOf(kind);

  let visited: VisitedSet;
  let links: ParentLinks;
  let levelSizes: number[];
  let generated: number;
  let level: number;
  let levelStart: number;
  let found: Found[];
  let remaining: Set<string> | undefined;
  let frontier: { bytes: Uint8Array; offsets: Uint32Array; length: number };
  let elapsedBefore = 0;
  let outcome: Outcome | undefined;
  let memoryLimit: string | undefined;
  // Fingerprints not yet published to the workers.
  let unpublished: Uint32Array;

  const record = (vs: readonly Violation[], level: number, index: number, hi: number, lo: number, action?: number): boolean =>
    recordViolations(found, remaining, vs, { level, index, hi: hi >>> 0, lo: lo >>> 0, ...(action !== undefined ? { action } : {}) });

  if (resume) {
    visited = VisitedSet.fromKeys(resume.keys, resume.visitedSize);
    links = new ParentLinks(Math.max(resume.parent.length, options.initialCapacity ?? 1 << 16));
    for (let i = 0; i < resume.parent.length; i++) links.push(resume.parent[i]!, resume.step[i]!);
    levelSizes = [...resume.levelSizes];
    generated = resume.generated;
    level = resume.level;
    levelStart = resume.levelStart;
    found = [...resume.found];
    remaining = resume.remaining ? new Set(resume.remaining) : undefined;
    frontier = { bytes: resume.frontierBytes, offsets: resume.frontierOffsets, length: resume.frontierOffsets.length - 1 };
    elapsedBefore = resume.elapsedMs;
    for (const [kind, c] of Object.entries(resume.coverage)) {
      const k = slotOf(kind);
      fired[k] = c.fired;
      produced[k] = c.newStates;
    }
    unpublished = keysOf(visited.keys, visited.size);
  } else {
    visited = new VisitedSet(options.initialCapacity);
    links = new ParentLinks(options.initialCapacity);
    found = [];
    remaining = stopAtFirst ? undefined : new Set(model.properties.map((p) => p.id));
    const fp = new Uint32Array(2);
    fingerprintInto(model.encode(root), fp);
    visited.insert(fp[0]!, fp[1]!);
    links.push(-1, -1);
    levelSizes = [1];
    generated = 0;
    level = 0;
    levelStart = 0;
    const first = new PackedList();
    first.push(packState(model, root));
    frontier = { ...first.compact(), length: 1 };
    unpublished = new Uint32Array([fp[0]! >>> 0, fp[1]! >>> 0]);
    if (record(checkProperties(model, root, remaining), 0, 0, fp[0]!, fp[1]!) && stopAtFirst) outcome = 'violation';
  }

  let checkpointPath: string | undefined;
  let checkpointLevel: number | undefined;
  let lastCheckpoint = performance.now();
  const checkpointNow = (): void => {
    if (!options.checkpoint) return;
    writeCheckpoint(options.checkpoint.path, {
      meta: options.checkpoint.meta,
      stopAtFirst,
      fromPrefix,
      level,
      levelStart,
      levelSizes,
      generated,
      coverage: counters.coverage(),
      found,
      remaining: remaining ? [...remaining] : null,
      elapsedMs: elapsedBefore + (performance.now() - t0),
      visitedSize: visited.size,
      keys: visited.keys,
      parent: links.parent.subarray(0, links.length),
      step: links.step.subarray(0, links.length),
      frontierBytes: frontier.bytes.subarray(0, frontier.offsets[frontier.length]!),
      frontierOffsets: frontier.offsets.subarray(0, frontier.length + 1),
    });
    checkpointPath = options.checkpoint.path;
    checkpointLevel = level;
    lastCheckpoint = performance.now();
  };

  const overMemory = (extraBytes = 0): boolean => {
    const rss = rssMb();
    if (rss > peakRss) peakRss = rss;
    if (maxMemoryMb === undefined || rss + extraBytes / 2 ** 20 <= maxMemoryMb) return false;
    memoryLimit = `memory limit of ${maxMemoryMb} MB reached (${Math.round(rss + extraBytes / 2 ** 20)} MB needed) at depth ${fromPrefix + level}`;
    return true;
  };

  // ---- Redis: the link, the run's descriptor, its queue.
  const link = await RedisLink.open(target);
  const r = link.redis;
  const key = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const queueName = `run-${key}`;
  const connection = connectionOptions(target);
  let queue: Queue | undefined;
  let events: QueueEvents | undefined;
  let aliveTimer: NodeJS.Timeout | undefined;
  let bytesOut = 0;
  let bytesIn = 0;
  let chunks = 0;
  let sent = 0;
  let redone = 0;
  const seenWorkers = new Set<string>();
  const refusals = new Set<string>();
  let resumable = false;
  let exhausted = false;
  const startupMs = 0;

  const publish = async (): Promise<void> => {
    const parts = fingerprintChunks(unpublished);
    if (parts.length > 0) {
      await link.guard(r.rpush(runKeyOf(key, ':fps'), ...parts));
      for (const p of parts) bytesOut += p.length;
      chunks += parts.length;
    }
    unpublished = new Uint32Array(0);
  };

  /** Workers refusing the run, and whether anyone serves it. */
  const lookAround = async (): Promise<void> => {
    const refused = await link.guard(r.hgetall(runKeyOf(key, ':refused')));
    for (const [who, why] of Object.entries(refused)) {
      if (refusals.has(who)) continue;
      refusals.add(who);
      note(`worker ${who} refused run ${key}: ${why}`);
    }
  };

  try {
    await link.guard(dropDeadRuns(link));
    const descriptor: RunDescriptor = { key, queue: queueName, spec: options.spec, identity: options.identity, host: hostname() };
    await link.guard(r.set(runKeyOf(key, ':alive'), '1', 'PX', ALIVE_MS));
    await link.guard(r.set(runKeyOf(key), JSON.stringify(descriptor)));
    await link.guard(r.sadd(`${PREFIX}runs`, key));
    aliveTimer = setInterval(() => void r.set(runKeyOf(key, ':alive'), '1', 'PX', ALIVE_MS).catch(() => {}), 2000);
    aliveTimer.unref();
    queue = new Queue(queueName, { connection, prefix: BULL_PREFIX });
    events = new QueueEvents(queueName, { connection, prefix: BULL_PREFIX });
    const onBullError = (e: Error): void => {
      // Connection errors are the watchdog's to report (it waits LOST_MS); others end the run.
      if (!/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|connect/i.test(e.message)) link.abort(`Redis error: ${e.message}`);
    };
    queue.on('error', onBullError);
    events.on('error', onBullError);
    await link.guard(Promise.all([queue.waitUntilReady(), events.waitUntilReady()]));
    const q = queue;
    const ev = events;

    // Completions and failures of this level's jobs, by batch.
    let onDone: ((b: number) => void) | undefined;
    let onFailed: ((b: number, why: string) => void) | undefined;
    let currentLevel = -1;
    const batchOf = (jobId: string): { level: number; b: number } | undefined => {
      const m = /^(\d+)-(\d+)$/.exec(jobId);
      return m ? { level: Number(m[1]), b: Number(m[2]) } : undefined;
    };
    ev.on('completed', ({ jobId }) => {
      const x = batchOf(jobId);
      if (x && x.level === currentLevel) onDone?.(x.b);
    });
    ev.on('stalled', () => redone++);
    ev.on('failed', ({ jobId, failedReason }) => {
      const x = batchOf(jobId);
      if (x && x.level === currentLevel) onFailed?.(x.b, failedReason);
    });

    search: while (outcome === undefined) {
      if (level >= maxLevels) {
        outcome = 'depth-reached';
        resumable = true;
        break;
      }
      if (options.checkpoint && performance.now() - lastCheckpoint >= options.checkpoint.everyMs) checkpointNow();
      if (shouldStop?.() || overMemory()) {
        outcome = 'interrupted';
        resumable = true;
        break;
      }
      await publish();

      // ---- 1, 2: the level's batches, queued in a window, expanded by the workers.
      const n = frontier.length;
      const live = Math.max(1, seenWorkers.size);
      const size = Math.max(1, Math.min(MAX_BATCH, Math.ceil(n / (live * 8))));
      const nb = Math.ceil(n / size);
      const results: BatchResult[] = new Array<BatchResult>(nb);
      const check = remaining ? [...remaining] : undefined;
      currentLevel = level;
      let levelGenerated = 0;
      let done = 0;
      let queued = 0;
      const fetching = new Set<number>();
      const stopped = await new Promise<'stop' | 'memory' | undefined>((resolve, reject) => {
        let finished = false;
        const finish = (v: 'stop' | 'memory' | undefined, e?: unknown): void => {
          if (finished) return;
          finished = true;
          clearInterval(ticker);
          onDone = undefined;
          onFailed = undefined;
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
            bytesOut += blob.length;
            pipe.set(runKeyOf(key, `:b:${level}:${b}`), blob);
            jobs.push({
              name: 'expand',
              data: { level, b, chunks, ...(check ? { check } : {}) },
              // Retries for errors a worker may not repeat (a lost connection); a batch that keeps failing fails the run.
              opts: { jobId: `${level}-${b}`, attempts: 3, backoff: { type: 'fixed', delay: 500 }, removeOnComplete: true, removeOnFail: 100 },
            });
          }
          link
            .guard(pipe.exec().then(() => q.addBulk(jobs)))
            .catch((e: unknown) => finish(undefined, e));
        };
        onDone = (b: number): void => {
          if (results[b] !== undefined || fetching.has(b)) return;
          fetching.add(b);
          link
            .guard(r.getBuffer(runKeyOf(key, `:r:${level}:${b}`)))
            .then(async (buf) => {
              if (buf === null) throw new DistributedError(`the result of batch ${b} of level ${level} is missing from Redis (evicted? give Redis enough maxmemory, policy noeviction)`);
              bytesIn += buf.length;
              const res = deserialize(buf) as BatchResult;
              await link.guard(r.unlink(runKeyOf(key, `:r:${level}:${b}`)));
              fetching.delete(b);
              results[b] = res;
              done++;
              for (const c of res.fired) levelGenerated += c;
              if (done === nb) finish(undefined);
              else enqueue();
            })
            .catch((e: unknown) => finish(undefined, e));
        };
        onFailed = (b: number, why: string): void => {
          if (results[b] !== undefined || fetching.has(b)) return;
          finish(undefined, new DistributedError(`batch ${b} of level ${level} failed on every attempt: ${why}`));
        };
        let lastNote = performance.now();
        let ticks = 0;
        const ticker = setInterval(() => {
          // Every 2 s, results whose completion event was missed (a reconnection of the events stream).
          if (++ticks % 8 === 0) {
            const waiting: number[] = [];
            for (let b = 0; b < queued && waiting.length < WINDOW; b++) if (results[b] === undefined && !fetching.has(b)) waiting.push(b);
            if (waiting.length > 0) {
              const pipe = r.pipeline();
              for (const b of waiting) pipe.exists(runKeyOf(key, `:r:${level}:${b}`));
              void pipe.exec().then((rs) => rs?.forEach(([e, x], i) => !e && x === 1 && onDone?.(waiting[i]!)), () => {});
            }
          }
          const stop = shouldStop?.() ? 'stop' : overMemory() ? 'memory' : undefined;
          if (stop) return finish(stop);
          void lookAround()
            .then(async () => {
              // Worker processes alive (their heartbeats).
              let cursor = '0';
              do {
                const [next, keys] = await r.scan(cursor, 'MATCH', `${PREFIX}worker:*`, 'COUNT', 1000);
                cursor = next;
                for (const k of keys) {
                  const v = await r.get(k);
                  if (v !== null && (JSON.parse(v) as { runs?: string[] }).runs?.includes(key)) seenWorkers.add(k);
                }
              } while (cursor !== '0');
            })
            .catch(() => {});
          const now = performance.now();
          if (seenWorkers.size === 0 && now - lastNote > 10_000) {
            lastNote = now;
            note(`waiting for workers: none has joined run ${key} yet (start one with: mmcheck worker --redis ${target.display})`);
          }
          if (onProgress && now - lastProgress >= progressMs) {
            lastProgress = now;
            const elapsedMs = now - t0;
            onProgress({
              depth: fromPrefix + level,
              generated: generated + levelGenerated,
              distinct: visited.size,
              queue: n - done * size,
              statesPerSec: elapsedMs > 0 ? ((generated + levelGenerated - (resume?.generated ?? 0)) * 1000) / elapsedMs : 0,
              elapsedMs,
              heapMb: rssMb(),
            } satisfies Progress);
          }
        }, 250);
        enqueue();
        // Completions missed while the QueueEvents stream was being read (none expected; cheap to check).
      });
      // The level's batches (kept until now: a job may still be retried after its result was read).
      const drop = r.pipeline();
      for (let b = 0; b < queued; b++) drop.unlink(runKeyOf(key, `:b:${level}:${b}`));
      await link.guard(drop.exec());
      if (stopped !== undefined) {
        outcome = 'interrupted';
        resumable = true;
        break;
      }

      // ---- 3: merge in frontier order: the first to bring a fingerprint owns it.
      let candidates = 0;
      for (let b = 0; b < nb; b++) candidates += results[b]!.cand.length / CAND_WORDS;
      sent += candidates;
      let growBytes = 0;
      for (let cap = visited.capacity; visited.size + candidates >= cap * VisitedSet.MAX_LOAD; ) {
        const grown = VisitedSet.grown(cap);
        if (grown === cap) break;
        cap = grown;
        growBytes += cap * 8;
      }
      if (overMemory(growBytes)) {
        outcome = 'interrupted';
        resumable = true;
        break;
      }
      const next = new PackedList(1 << 16, Math.max(64, candidates));
      const fresh: number[] = [];
      let stopAt: { b: number; pos: number; k: number } | undefined;
      merge: for (let b = 0; b < nb; b++) {
        const res = results[b]!;
        const map = res.kindNames.map(slotOf);
        let vi = 0;
        // Transition violations in generation order with the candidates (as parallel.ts).
        let ti = 0;
        const transitionsUpTo = (pos: number, k: number): boolean => {
          for (; ti < res.transitions.length; ti++) {
            const x = res.transitions[ti]!;
            if (x.pos > pos || (x.pos === pos && x.k > k)) return false;
            if (record(x.vs, level + 1, levelStart + x.pos, x.hi, x.lo, x.k) && stopAtFirst) {
              stopAt = { b, pos: x.pos, k: x.k };
              return true;
            }
          }
          return false;
        };
        for (let c = 0, j = 0; j < res.cand.length; c++, j += CAND_WORDS) {
          const pos = res.cand[j]!;
          const k = res.cand[j + 1]!;
          const hi = res.cand[j + 2]!;
          const lo = res.cand[j + 3]!;
          if (transitionsUpTo(pos, k)) break merge;
          while (vi < res.violations.length && res.violations[vi]!.c < c) vi++;
          if (!visited.insert(hi, lo)) continue;
          fresh.push(hi >>> 0, lo >>> 0);
          produced[map[res.cand[j + 4]!]!]!++;
          const index = links.push(levelStart + pos, k);
          next.push(res.bytes.subarray(res.offsets[c]!, res.offsets[c + 1]!));
          const v = res.violations[vi];
          if (v !== undefined && v.c === c && record(v.vs, level + 1, index, hi, lo) && stopAtFirst) {
            stopAt = { b, pos, k };
            break merge;
          }
        }
        if (transitionsUpTo(Infinity, 0)) break merge;
      }
      // Successors generated (and fired per kind): all of the level, or, at
      // a violation, those the single-thread BFS generated before stopping.
      for (let b = 0; b < nb; b++) {
        const res = results[b]!;
        const map = res.kindNames.map(slotOf);
        if (stopAt !== undefined && b > stopAt.b) break;
        if (stopAt !== undefined && b === stopAt.b) {
          let upto = stopAt.k + 1;
          for (let i = 0; i < stopAt.pos - b * size; i++) upto += res.counts![i]!;
          generated += upto;
          for (let i = 0; i < upto; i++) fired[map[res.kinds![i]!]!]!++;
          break;
        }
        for (let i = 0; i < res.fired.length; i++) {
          generated += res.fired[i]!;
          fired[map[i]!]! += res.fired[i]!;
        }
      }
      if (stopAt !== undefined) {
        levelSizes.push(next.length);
        outcome = 'violation';
        break search;
      }
      unpublished = Uint32Array.from(fresh);
      levelStart += n;
      level++;
      frontier = { ...next, length: next.length };
      if (next.length === 0) {
        exhausted = true;
        outcome = 'complete';
        break;
      }
      levelSizes.push(next.length);
    }
    if (resumable && options.checkpoint) checkpointNow();
  } catch (e) {
    if (e instanceof DistributedError && resumable === false && options.checkpoint && checkpointLevel === undefined) {
      // Nothing to add: the last checkpoint (if any) stays as it was.
    }
    throw e;
  } finally {
    if (aliveTimer) clearInterval(aliveTimer);
    const lost = link.failed !== undefined;
    if (!lost) {
      // Best effort, bounded: a run's keys and queue go away with it.
      await Promise.race([
        (async () => {
          await queue?.obliterate({ force: true }).catch(() => {});
          await dropRun(link, key, queueName).catch(() => {});
        })(),
        new Promise((res) => setTimeout(res, 3000).unref()),
      ]);
    }
    await Promise.race([
      Promise.allSettled([events?.close(), queue?.close()]),
      new Promise((res) => setTimeout(res, lost ? 100 : 2000).unref()),
    ]);
    if (lost) {
      void events?.disconnect().catch(() => {});
      void queue?.disconnect().catch(() => {});
    }
    link.close();
  }
  if (outcome !== 'interrupted' && found.length > 0) outcome = 'violation';

  return {
    ...searchResult({ model, root, links, found, fromPrefix, t0, outcome: outcome!, exhausted, generated, generatedBefore: resume?.generated ?? 0, levelSizes, counters, visited }),
    ...(memoryLimit !== undefined ? { memoryLimit } : {}),
    ...(checkpointPath !== undefined ? { checkpoint: checkpointPath, checkpointLevel: checkpointLevel! } : {}),
    workers: seenWorkers.size,
    workerProcesses: seenWorkers.size,
    redone,
    peakRssMb: peakRss,
    startupMs,
    sent,
    bytesOut,
    bytesIn,
  };
}

// ------------------------------------------------------------------ worker

export interface WorkerOptions {
  target: RedisTarget;
  /** Batches expanded at once (piscina threads). */
  concurrency: number;
  /**
   * Decide whether this process may serve a run: resolve its model locally
   * (never from the network) and compare identities. A string is the
   * reason to refuse it.
   */
  accept(d: RunDescriptor): Promise<{ spec: ModelSpec } | string>;
  /** BullMQ lock duration: a job whose worker died is run elsewhere about this long after (default 30 s). */
  lockMs?: number;
  /** Testing fault handling: hold every batch this long before writing its result (a slow or hung worker). */
  delayMs?: number;
  /** Lines for the log (redacted by the caller's printer). */
  log(message: string): void;
  /** Resolves to stop serving (SIGINT, SIGTERM). */
  stop: Promise<void>;
}

interface Serving {
  d: RunDescriptor;
  worker: Worker<JobData>;
  pool: Piscina;
  replica: VisitedSet;
  applied: number;
  inflight: number;
  /** The level table of this process's batches of one level. */
  table?: { level: number; table: LevelTable };
  /** Applying fingerprint chunks: jobs wait for it. */
  applying?: Promise<void>;
  batches: number;
}

/**
 * Serve expansion work until `stop` resolves (returns) or Redis is lost
 * (throws DistributedError). Runs are discovered in Redis; each accepted
 * run gets a BullMQ worker on its queue and a piscina pool.
 */
export async function serveWorker(o: WorkerOptions): Promise<void> {
  const link = await RedisLink.open(o.target);
  const r = link.redis;
  const id = `${hostname()}-${process.pid}`;
  const serving = new Map<string, Serving>();
  const refused = new Set<string>();
  const connection = connectionOptions(o.target);
  const lockMs = o.lockMs ?? 30_000;
  let stopping = false;

  const heartbeat = (): Promise<unknown> =>
    r.set(`${PREFIX}worker:${id}`, JSON.stringify({ host: hostname(), pid: process.pid, concurrency: o.concurrency, runs: [...serving.keys()] }), 'PX', 10_000);

  // Thread pools by model spec, kept between runs of the same model (a pool's threads build the model once).
  const pools = new Map<string, { pool: Piscina; users: number; idleSince: number }>();
  const poolFor = (spec: ModelSpec): Piscina => {
    const k = JSON.stringify(spec);
    let p = pools.get(k);
    if (!p) {
      const pool = new Piscina({ filename: WORKER_FILE, workerData: spec, minThreads: o.concurrency, maxThreads: o.concurrency, idleTimeout: 60_000, concurrentTasksPerWorker: 1 });
      p = { pool, users: 0, idleSince: 0 };
      pools.set(k, p);
    }
    p.users++;
    return p.pool;
  };
  const release = (pool: Piscina): void => {
    for (const p of pools.values())
      if (p.pool === pool) {
        p.users--;
        p.idleSince = Date.now();
      }
  };
  const dropIdlePools = (all: boolean): void => {
    for (const [k, p] of pools)
      if (all || (p.users === 0 && Date.now() - p.idleSince > 60_000)) {
        pools.delete(k);
        void p.pool.destroy().catch(() => {});
      }
  };

  const close = async (key: string, why: string): Promise<void> => {
    const s = serving.get(key);
    if (!s) return;
    serving.delete(key);
    await Promise.race([s.worker.close(true).catch(() => {}), new Promise((res) => setTimeout(res, 2000).unref())]);
    release(s.pool);
    o.log(`run ${key}: ${why} (${s.batches} batches expanded here)`);
  };

  const process1 = (s: Serving) => async (job: Job<JobData>): Promise<number> => {
    const { level, b, chunks, check } = job.data;
    while (s.applied < chunks) {
      if (s.applying) {
        await s.applying;
        continue;
      }
      // New fingerprints: only once no batch of an earlier level is being expanded here.
      s.applying = (async () => {
        while (s.inflight > 0) await new Promise((res) => setTimeout(res, 5));
        const parts = await link.guard(r.lrangeBuffer(runKeyOf(s.d.key, ':fps'), s.applied, chunks - 1));
        for (const p of parts) {
          const pairs = new Uint32Array(p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength));
          for (let i = 0; i < pairs.length; i += 2) s.replica.insert(pairs[i]!, pairs[i + 1]!);
        }
        s.applied += parts.length;
      })().finally(() => (s.applying = undefined));
      await s.applying;
    }
    if (s.applied > chunks) throw new Error(`batch ${b} of level ${level} is from an earlier level than this worker's visited set`);
    s.inflight++;
    try {
      const buf = await link.guard(r.getBuffer(runKeyOf(s.d.key, `:b:${level}:${b}`)));
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
        const task: ExpandTask = { first: batch.first, bytes: batch.bytes, offsets: batch.offsets, visited: s.replica.keys.buffer as SharedArrayBuffer, table: table.buffer, ...(check ? { check } : {}) };
        res = (await s.pool.run(task)) as ExpandResult;
        if (!res.full) break;
        if (s.table.table === table) s.table = { level, table: LevelTable.create(table.capacity * 2) };
      }
      const firedByKind = new Array<number>(res.kindNames.length).fill(0);
      for (let i = 0; i < res.kinds.length; i++) firedByKind[res.kinds[i]!]!++;
      const out: BatchResult = {
        cand: res.cand,
        bytes: res.bytes,
        offsets: res.offsets,
        violations: res.violations,
        transitions: res.transitions,
        kindNames: res.kindNames,
        fired: firedByKind,
        ...(res.violations.length > 0 || res.transitions.length > 0 ? { counts: res.counts, kinds: res.kinds } : {}),
      };
      const blob = serialize(out);
      if (o.delayMs) {
        o.log(`holding batch ${level}-${b} of run ${s.d.key} for ${o.delayMs} ms (--delay-ms)`);
        await new Promise((res) => setTimeout(res, o.delayMs));
      }
      await link.guard(r.set(runKeyOf(s.d.key, `:r:${level}:${b}`), blob, 'EX', RESULT_TTL_S));
      s.batches++;
      return blob.length;
    } finally {
      s.inflight--;
    }
  };

  const discover = async (): Promise<void> => {
    const keys = await r.smembers(`${PREFIX}runs`);
    for (const key of [...serving.keys()]) {
      if (!keys.includes(key) || (await r.exists(runKeyOf(key, ':alive'))) === 0) await close(key, 'over');
    }
    for (const key of keys) {
      if (serving.has(key) || refused.has(key) || stopping) continue;
      if ((await r.exists(runKeyOf(key, ':alive'))) === 0) continue;
      const text = await r.get(runKeyOf(key));
      if (text === null) continue;
      const d = JSON.parse(text) as RunDescriptor;
      const verdict = await o.accept(d);
      if (typeof verdict === 'string') {
        refused.add(key);
        await r.hset(runKeyOf(key, ':refused'), id, verdict);
        o.log(`refusing run ${key} from ${d.host}: ${verdict}`);
        continue;
      }
      const pool = poolFor(verdict.spec);
      const s = { d, pool, replica: new VisitedSet(1 << 12, true), applied: 0, inflight: 0, batches: 0 } as Omit<Serving, 'worker'> as Serving;
      const worker = new Worker<JobData>(d.queue, process1(s), {
        connection,
        prefix: BULL_PREFIX,
        // Two jobs per thread: one's Redis round trips overlap the other's expansion.
        concurrency: o.concurrency * 2,
        lockDuration: lockMs,
        stalledInterval: Math.max(500, Math.floor(lockMs / 2)),
        // A killed worker's job is moved back this many times before the run fails.
        maxStalledCount: 20,
        autorun: true,
      });
      worker.on('error', (e: Error) => {
        if (!/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|connect/i.test(e.message)) o.log(`run ${key}: ${redactUrls(e.message)}`);
      });
      worker.on('failed', (job, e) => o.log(`run ${key}: batch ${job?.id ?? '?'} failed here: ${redactUrls(e.message)}`));
      s.worker = worker;
      serving.set(key, s);
      o.log(`serving run ${key} from ${d.host} (${o.concurrency} thread${o.concurrency === 1 ? '' : 's'})`);
      await heartbeat();
    }
  };

  let timer: NodeJS.Timeout | undefined;
  try {
    await link.guard(heartbeat());
    o.log(`worker ${id} waiting for runs on ${o.target.display}`);
    let busy = false;
    const tick = new Promise<void>((_, reject) => {
      timer = setInterval(() => {
        if (busy) return;
        busy = true;
        link
          .guard(Promise.all([heartbeat(), discover().then(() => dropIdlePools(false))]))
          .catch((e: unknown) => {
            if (e instanceof DistributedError) reject(e);
            else o.log(`internal error: ${redactUrls((e as Error).message)}`);
          })
          .finally(() => (busy = false));
      }, 500);
    });
    await Promise.race([o.stop, tick, link.fatal]);
    stopping = true;
  } finally {
    if (timer) clearInterval(timer);
    const lost = link.failed !== undefined;
    const tidy = async (): Promise<void> => {
      for (const key of [...serving.keys()]) {
        if (lost) {
          const s = serving.get(key)!;
          serving.delete(key);
          void s.worker.disconnect().catch(() => {});
        } else await close(key, 'worker stopping');
      }
      dropIdlePools(true);
      if (!lost) await r.del(`${PREFIX}worker:${id}`).catch(() => {});
    };
    // Bounded: Redis may be gone (then requests would wait for it).
    await Promise.race([tidy(), new Promise((res) => setTimeout(res, 3000).unref())]);
    link.close();
  }
}

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
//   3. after the barrier, the main thread walks the batches in order and
//      takes each candidate that owns its fingerprint (smallest parent
//      position, then first action), which is exactly the successor the
//      single-thread BFS would have recorded first. It inserts it in the
//      visited set, appends its parent link and its packed state to the
//      next frontier, and records its violations.
// Why (a) rather than owner-computes sharding (b): with (b) every generated
// successor (three quarters are duplicates) must be packed and routed to its
// owner before anyone knows whether it is new, and the canonical order must
// still be rebuilt across shards after the level; with (a) a worker decides
// locally whether a successor is new, so only the new states of a level,
// and the few duplicates that race with them, are packed and moved, and the
// canonical order is the batch order. (b) is the one that extends across
// machines; on one machine (a) moves less.
//
// The visited set and the parent links change only between levels, and the
// frontier of the level being expanded is kept until the level is merged,
// so the state at the last level boundary is always intact: a stop
// (Ctrl-C, --max-memory) discards the partial level, and a checkpoint of
// that boundary resumes exactly (src/engine/checkpoint.ts).

import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { checkProperties, ParseError, type Model, type Violation } from './model.ts';
import { fingerprintInto } from './hash.ts';
import { VisitedSet } from './visited.ts';
import { ParentLinks } from './parents.ts';
import { LevelTable } from './leveltable.ts';
import { CAND_WORDS, type ExpandResult, type ExpandTask, type WarmUpTask } from './expand.ts';
import { packState, PackedList } from './pack.ts';
import { searchResult, type ExploreOptions, type ExploreResult, type Found, type Outcome, type Progress } from './explorer.ts';
import { writeCheckpoint, type Checkpoint } from './checkpoint.ts';
import { KindCounters, recordViolations } from './coverage.ts';
import type { ModelSpec } from './spec.ts';

export const WORKER_FILE = fileURLToPath(new URL('../../workers/expand.mjs', import.meta.url));

/** Most states in one batch. */
const MAX_BATCH = 512;
/** Young generation of a worker thread, in MB (semi-spaces of about 2 MB). */
const YOUNG_GENERATION_MB = 6;

export interface ParallelOptions<S> extends ExploreOptions<S> {
  /** Worker threads (>= 1). */
  workers: number;
  /** How a worker rebuilds the model (the same model as `model`). */
  spec: ModelSpec;
  /** Stop cleanly (outcome 'interrupted', `memoryLimit` set) before the process's resident memory passes this. */
  maxMemoryMb?: number;
  /** Write a checkpoint at level boundaries at most every `everyMs`, and when the search stops at one. */
  checkpoint?: { path: string; everyMs: number; meta: unknown };
  /** Continue from this checkpoint (its model, bounds and from-state must be this run's). */
  resume?: Checkpoint;
  /** Fingerprints each level table is first sized for (default: 4 times the last level); small values exercise its growth. */
  levelTableSize?: number;
}

export interface ParallelResult<A, S> extends ExploreResult<A, S> {
  /** Why the search stopped at the memory bound (outcome 'interrupted'). */
  memoryLimit?: string;
  /** The checkpoint written last, if any. */
  checkpoint?: string;
  /** Levels expanded when the last checkpoint was written. */
  checkpointLevel?: number;
  workers: number;
  /** Peak resident memory of the process (all threads), sampled after every batch. */
  peakRssMb: number;
  /** Part of elapsedMs spent starting the pool (threads, model built in each). */
  startupMs: number;
  /** Successors the workers packed and sent back: the new states, and the duplicates that raced with them. */
  sent: number;
}

interface Frontier {
  bytes: Uint8Array;
  offsets: Uint32Array;
  length: number;
}

const rssMb = (): number => process.memoryUsage.rss() / 2 ** 20;

export async function exploreParallel<S, A>(model: Model<S, A>, options: ParallelOptions<S>): Promise<ParallelResult<A, S>> {
  const { depth, onProgress, shouldStop, workers, maxMemoryMb } = options;
  const resume = options.resume;
  const stopAtFirst = resume ? resume.stopAtFirst : (options.stopAtFirst ?? true);
  const fromPrefix = resume ? resume.fromPrefix : (options.fromPrefix ?? 0);
  const progressMs = options.progressMs ?? 3000;
  if (!Number.isInteger(workers) || workers < 1) throw new ParseError(`workers must be a positive integer, got ${workers}`);
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
  let frontier: Frontier;
  let elapsedBefore = 0;
  let outcome: Outcome | undefined;
  let memoryLimit: string | undefined;

  const record = (vs: readonly Violation[], level: number, index: number, hi: number, lo: number, action?: number): boolean =>
    recordViolations(found, remaining, vs, { level, index, hi: hi >>> 0, lo: lo >>> 0, ...(action !== undefined ? { action } : {}) });

  if (resume) {
    visited = VisitedSet.fromKeys(resume.keys, resume.visitedSize, true);
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
  } else {
    visited = new VisitedSet(options.initialCapacity, true);
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

  let pool: Piscina | undefined;
  // Set when the search ended at a level boundary with a frontier left to expand: worth a checkpoint.
  let resumable = false;
  let exhausted = false;
  let startupMs = 0;
  let sent = 0;
  try {
    search: while (outcome === undefined) {
      if (level >= maxLevels) {
        outcome = 'depth-reached';
        resumable = true;
        break;
      }
      if (options.checkpoint && performance.now() - lastCheckpoint >= options.checkpoint.everyMs) checkpointNow();
      if (shouldStop?.()) {
        outcome = 'interrupted';
        resumable = true;
        break;
      }
      if (overMemory()) {
        outcome = 'interrupted';
        resumable = true;
        break;
      }
      if (pool === undefined) {
        const ts = performance.now();
        pool = new Piscina({
          filename: WORKER_FILE,
          workerData: options.spec,
          minThreads: workers,
          maxThreads: workers,
          idleTimeout: 60_000,
          concurrentTasksPerWorker: 1,
          // A worker's objects die young (a transition's copies, a batch's
          // states): a small young generation costs no time and saves about
          // 30 MB of resident memory per worker (measured on spin-core).
          resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
        });
        const ready = new SharedArrayBuffer(4);
        const p0 = pool;
        await Promise.all(Array.from({ length: workers }, () => p0.run({ warmup: ready, workers } satisfies WarmUpTask)));
        startupMs = performance.now() - ts;
      }

      // ---- 1, 2: expand the level in batches.
      const n = frontier.length;
      const size = Math.max(1, Math.min(MAX_BATCH, Math.ceil(n / (workers * 8))));
      const nb = Math.ceil(n / size);
      const results: ExpandResult[] = new Array<ExpandResult>(nb);
      let table = LevelTable.create(options.levelTableSize ?? Math.max(1024, levelSizes.at(-1)! * 4));
      const check = remaining ? [...remaining] : undefined;
      let levelGenerated = 0;
      // Batches the merge needs: all, unless a violation is found (stopping at the first).
      let needed = nb;
      let done = 0;
      const poll = (): 'stop' | 'memory' | undefined => {
        if (shouldStop?.()) return 'stop';
        if (overMemory()) return 'memory';
        if (onProgress) {
          const now = performance.now();
          if (now - lastProgress >= progressMs) {
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
        }
        return undefined;
      };
      const p = pool;
      const stopped = await new Promise<'stop' | 'memory' | undefined>((resolve, reject) => {
        const queue: number[] = [];
        for (let b = nb - 1; b >= 0; b--) queue.push(b);
        let inFlight = 0;
        let grow = false;
        let stop: 'stop' | 'memory' | undefined;
        let failed = false;
        // Stopping at the first violation: batches [0, prefix) are complete,
        // and none of their new states violates. Once a complete batch holds
        // a violating successor that owns its fingerprint, later batches
        // cannot change that (their ranks are larger): they are not needed.
        let prefix = 0;
        const scanPrefix = (): void => {
          while (prefix < needed && results[prefix] !== undefined) {
            const r = results[prefix]!;
            // A transition violation always counts (it needs no ownership).
            if (r.transitions.length > 0) {
              needed = prefix + 1;
              return;
            }
            for (const v of r.violations) {
              const j = v.c * CAND_WORDS;
              if (table.rankOf(r.cand[j + 2]!, r.cand[j + 3]!) === r.cand[j]! + 1) {
                needed = prefix + 1;
                return;
              }
            }
            prefix++;
          }
        };
        const pump = (): void => {
          if (failed) return;
          stop ??= poll();
          if (stop !== undefined) {
            if (inFlight === 0) resolve(stop);
            return;
          }
          if (grow) {
            if (inFlight > 0) return;
            table = table.grow();
            grow = false;
          }
          while (queue.length > 0 && queue[queue.length - 1]! >= needed) queue.pop();
          while (inFlight < workers * 2 && queue.length > 0) dispatch(queue.pop()!);
          if (inFlight === 0 && queue.length === 0) resolve(undefined);
        };
        const dispatch = (b: number): void => {
          const start = b * size;
          const end = Math.min(n, start + size);
          const base = frontier.offsets[start]!;
          const bytes = frontier.bytes.slice(base, frontier.offsets[end]!);
          const offsets = new Uint32Array(end - start + 1);
          for (let i = 0; i <= end - start; i++) offsets[i] = frontier.offsets[start + i]! - base;
          const task: ExpandTask = { first: start, bytes, offsets, visited: visited.keys.buffer as SharedArrayBuffer, table: table.buffer, ...(check ? { check } : {}) };
          inFlight++;
          p.run(task, { transferList: [bytes.buffer, offsets.buffer] }).then(
            (r: ExpandResult) => {
              inFlight--;
              if (r.full) {
                grow = true;
                queue.push(b);
              } else {
                results[b] = r;
                done++;
                for (let i = 0; i < r.counts.length; i++) levelGenerated += r.counts[i]!;
                if (stopAtFirst) scanPrefix();
              }
              pump();
            },
            (e: unknown) => {
              failed = true;
              reject(e);
            },
          );
        };
        pump();
      });
      if (stopped !== undefined) {
        // The partial level is dropped: everything is as at the level boundary.
        outcome = 'interrupted';
        resumable = true;
        break;
      }

      // ---- 3: merge in canonical order.
      let candidates = 0;
      let candidateBytes = 0;
      for (let b = 0; b < needed; b++) {
        candidates += results[b]!.cand.length / CAND_WORDS;
        candidateBytes += results[b]!.bytes.length;
      }
      sent += candidates;
      // The visited set may have to grow for this level: check the bound first.
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
      // Sized for every candidate: the next frontier never grows (and copies) while it fills.
      const next = new PackedList(Math.max(1024, candidateBytes), Math.max(64, candidates));
      let stopAt: { b: number; pos: number; k: number } | undefined;
      // Successors generated (and fired per kind): all of the level, or, at
      // a violation, those the single-thread BFS generated before stopping.
      const count = (b: number): void => {
        const r = results[b]!;
        const map = r.kindNames.map(slotOf);
        let upto = r.kinds.length;
        if (stopAt !== undefined && b === stopAt.b) {
          upto = stopAt.k + 1;
          for (let i = 0; i < stopAt.pos - b * size; i++) upto += r.counts[i]!;
        }
        generated += upto;
        for (let i = 0; i < upto; i++) fired[map[r.kinds[i]!]!]!++;
      };
      merge: for (let b = 0; b < needed; b++) {
        const r = results[b]!;
        const map = r.kindNames.map(slotOf);
        let vi = 0;
        // Transition violations, in generation order with the candidates: the
        // one of a transition comes before the state check of its successor.
        let ti = 0;
        const transitionsUpTo = (pos: number, k: number): boolean => {
          for (; ti < r.transitions.length; ti++) {
            const x = r.transitions[ti]!;
            if (x.pos > pos || (x.pos === pos && x.k > k)) return false;
            if (record(x.vs, level + 1, levelStart + x.pos, x.hi, x.lo, x.k) && stopAtFirst) {
              stopAt = { b, pos: x.pos, k: x.k };
              count(b);
              return true;
            }
          }
          return false;
        };
        for (let c = 0, j = 0; j < r.cand.length; c++, j += CAND_WORDS) {
          const pos = r.cand[j]!;
          const k = r.cand[j + 1]!;
          const hi = r.cand[j + 2]!;
          const lo = r.cand[j + 3]!;
          if (transitionsUpTo(pos, k)) break merge;
          while (vi < r.violations.length && r.violations[vi]!.c < c) vi++;
          if (!table.take(hi, lo, pos + 1)) continue;
          if (!visited.insert(hi, lo)) throw new Error('parallel explorer: a level-table owner was already visited');
          produced[map[r.cand[j + 4]!]!]!++;
          const index = links.push(levelStart + pos, k);
          next.push(r.bytes.subarray(r.offsets[c]!, r.offsets[c + 1]!));
          const v = r.violations[vi];
          if (v !== undefined && v.c === c && record(v.vs, level + 1, index, hi, lo) && stopAtFirst) {
            stopAt = { b, pos, k };
            count(b);
            break merge;
          }
        }
        if (transitionsUpTo(Infinity, 0)) break merge;
        // The batch is merged: count it and let it go, so that the level's
        // results and the next frontier are not both held whole.
        count(b);
        results[b] = undefined as unknown as ExpandResult;
      }
      if (stopAt !== undefined) {
        levelSizes.push(next.length);
        outcome = 'violation';
        break search;
      }
      levelStart += n;
      level++;
      frontier = next;
      if (next.length === 0) {
        exhausted = true;
        outcome = 'complete';
        break;
      }
      levelSizes.push(next.length);
    }
    if (resumable && options.checkpoint) checkpointNow();
  } finally {
    if (pool) await pool.destroy();
  }
  if (outcome !== 'interrupted' && found.length > 0) outcome = 'violation';

  return {
    ...searchResult({ model, root, links, found, fromPrefix, t0, outcome: outcome!, exhausted, generated, generatedBefore: resume?.generated ?? 0, levelSizes, counters, visited }),
    ...(memoryLimit !== undefined ? { memoryLimit } : {}),
    ...(checkpointPath !== undefined ? { checkpoint: checkpointPath, checkpointLevel: checkpointLevel! } : {}),
    workers,
    peakRssMb: peakRss,
    startupMs,
    sent,
  };
}

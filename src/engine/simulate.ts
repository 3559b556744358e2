// Random and swarm walks past the exhaustive horizon (DESIGN.md §5,
// `mmcheck simulate`). A walk starts at the root (the initial state or a
// `--from` state) and takes up to `depth` actions, each chosen uniformly
// among the enabled ones (model.actions), checking the properties at every
// state it reaches. In swarm mode (Groce et al., "Swarm Testing", ISSTA
// 2012) each walk first draws a configuration (a subset of the operation
// alphabet, smaller bounds) and only takes the actions it allows (the
// configuration may give the model under its bounds, built once, so that
// the walk does not enumerate what it would filter out).
//
// Reproducibility: walk i draws everything from a PRNG seeded by (seed, i),
// so a walk is the same whichever thread (or machine: simulate-redis.ts)
// runs it. Walks run in batches of
// consecutive indices on a piscina pool; stopping at the first violation,
// the reported one is the violating walk of lowest index, and the counts are
// those of walks 0..that index, whatever the number of workers. With
// --continue, per property, the violating walk of lowest index.
//
// Milestones (options.targets: simulate --properties, unless
// --no-milestones): when the search reports some properties only (the
// targets), a walk that violates another property, one its start state did
// not violate, ends there, and its state becomes a milestone: later walks
// start from a milestone half of the time. A harmful bug is often reached
// through a harmless-looking one (B2: the double reuse of an anon_vma, then
// the merge that loses a chain); a walk from the first is a few steps from
// the second, where a walk from the root needs the whole sequence by chance.
// Walks run in epochs of EPOCH_WALKS; an epoch's walks start from the
// milestones of the epochs before it, taken in walk order (at most
// MAX_MILESTONES, replaced by a PRNG of the seed), so a walk is still the
// same whichever thread or machine runs it.
//
// The engine knows only src/engine/model.ts; what a swarm configuration is
// comes from the caller, as a module the workers load (SwarmSpec).

import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { checkProperties, ParseError, searchModel, transitionChecker, type Model } from './model.ts';
import { replayTexts, stateFingerprint } from './replay.ts';
import { buildModel, type ModelSpec } from './spec.ts';

export const SIMULATE_WORKER_FILE = fileURLToPath(new URL('../../workers/simulate.mjs', import.meta.url));

/** Walks per epoch of the milestone pool (a multiple of any batch size used). */
export const EPOCH_WALKS = 2048;
/** Most milestones kept: each batch carries them all. */
export const MAX_MILESTONES = 64;
/** How often a walk starts from a milestone when there is one. */
const MILESTONE_START = 0.5;

// ---------------------------------------------------------------- PRNG

/** splitmix32 finaliser: a well-mixed 32-bit value of x. */
function mix32(x: number): number {
  let t = (x + 0x9e3779b9) | 0;
  t = Math.imul(t ^ (t >>> 16), 0x21f0aaad);
  t = Math.imul(t ^ (t >>> 15), 0x735a2d97);
  return (t ^ (t >>> 15)) >>> 0;
}

/** The PRNG of walk `walk` under `seed` (sfc32): uniform in [0, 1). */
export function walkRandom(seed: number, walk: number): () => number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  let a = mix32(lo ^ 0x5bd1e995);
  let b = mix32(hi ^ a);
  let c = mix32(walk ^ b);
  let d = mix32(((walk / 2 ** 32) >>> 0) ^ c);
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 2 ** 32;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** A uniform integer in [0, n). */
export const pick = (rand: () => number, n: number): number => Math.floor(rand() * n);

/** An index drawn in proportion to the weights w (at least one positive; a zero weight is never drawn). */
function pickByWeight(rand: () => number, w: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < w.length; i++) total += w[i]!;
  let r = rand() * total;
  let last = -1;
  for (let i = 0; i < w.length; i++) {
    if (w[i]! <= 0) continue;
    r -= w[i]!;
    if (r < 0) return i;
    last = i;
  }
  return last; // rounding: the last positive weight
}

/**
 * Draw among cands (a fresh list, filtered here in place by the
 * configuration) until one runs: its successor, or undefined when none does.
 * Unless listed (Model.candidates), every action is enabled and the first
 * draw runs.
 */
function drawAndRun<S, A>(model: Model<S, A>, listed: boolean, config: SwarmConfig<S, A> | undefined, rand: () => number, s: S, cands: A[]): { a: A; t: S } | undefined {
  if (config) {
    let kept = 0;
    for (const a of cands) if (config.allow(s, a)) cands[kept++] = a;
    cands.length = kept;
  }
  while (cands.length > 0) {
    const i = pick(rand, cands.length);
    const a = cands[i]!;
    const t = listed ? model.tryNext!(s, a) : model.next(s, a);
    if (t !== undefined) return { a, t };
    cands.splice(i, 1);
  }
  return undefined;
}

/** The actions of one kind in s: its candidates (Model.candidates), or those picked out of actions(s). */
function actionsOfKind<S, A>(model: Model<S, A>, listed: boolean, s: S, kind: string): A[] {
  return listed ? model.candidates!(s, kind) : model.actions(s).filter((a) => model.actionKind(a) === kind);
}

/**
 * One step of a walk from s: an allowed action drawn at random among the
 * enabled ones, and its successor; undefined when none is enabled.
 *
 * A configuration with kind shares draws a kind first, in proportion to the
 * shares of the kinds not yet found empty, then one of its actions
 * uniformly: each kind's share is split evenly among its enabled actions,
 * and a model that lists candidates by kind (Model.candidates) lists only
 * that kind's. Otherwise the draw is uniform among all the actions. A model
 * with tryNext has its candidates drawn and tried until one runs, dropping
 * those that do not: the draw is still among the enabled actions, without
 * running every one of them first.
 */
function walkStep<S, A>(model: Model<S, A>, config: SwarmConfig<S, A> | undefined, rand: () => number, s: S, shares: number[]): { a: A; t: S } | undefined {
  const listed = model.candidates !== undefined && model.tryNext !== undefined;
  const kinds = config?.kinds;
  if (kinds === undefined) return drawAndRun(model, listed, config, rand, s, listed ? model.candidates!(s) : model.actions(s));
  shares.length = 0;
  for (const k of kinds) shares.push(k.share);
  for (let left = kinds.length; left > 0; left--) {
    const k = pickByWeight(rand, shares);
    const step = drawAndRun(model, listed, config, rand, s, actionsOfKind(model, listed, s, kinds[k]!.kind));
    if (step !== undefined) return step;
    shares[k] = 0;
  }
  return undefined;
}

// ---------------------------------------------------------------- swarm

/** One walk's swarm configuration: which actions it may take. */
export interface SwarmConfig<S, A> {
  /** For the report, e.g. "ops mmap,fork,exit; procs 5; pages 2; max-len 1" (called only for a walk that reports). */
  describe(): string;
  allow(s: S, a: A): boolean;
  /**
   * Optional: the kinds (Model.actionKind) the walk may take, each with its
   * share (> 0) of the draws; a step then draws a kind first (see walkStep),
   * instead of drawing uniformly among all the actions, where a kind with
   * many argument combinations would crowd out the others.
   */
  kinds?: readonly { kind: string; share: number }[];
  /**
   * Optional: an equivalent model whose actions include every allowed one
   * (the same model under narrower bounds), so that a walk does not
   * enumerate actions it would filter out; allow still filters its list.
   */
  model?: Model<S, A>;
  /**
   * Optional: the state the walk starts from instead of the root, the same
   * under every action the configuration allows (e.g. without a budget it
   * never uses, which the model would otherwise pay for at every step).
   */
  root?: S;
}

/** Draws a configuration from the walk's PRNG (root: the walks' start state). */
export type Swarm<S, A> = (rand: () => number, root: S) => SwarmConfig<S, A>;

/** How a worker rebuilds the swarm: a module export called with (args, model). */
export type SwarmSpec = ModelSpec;

export async function buildSwarm<S, A>(spec: SwarmSpec, model: Model<S, A>): Promise<Swarm<S, A>> {
  const mod = (await import(spec.module)) as Record<string, unknown>;
  const factory = mod[spec.export];
  if (typeof factory !== 'function') throw new Error(`swarm spec: ${spec.module} has no function export "${spec.export}"`);
  return (factory as (args: unknown, m: Model<S, A>) => Swarm<S, A>)(spec.args, model);
}

// ---------------------------------------------------------------- walks

/** A property violated on a walk. */
export interface WalkHit {
  /** Walk index. */
  walk: number;
  property: string;
  details: string[];
  /** The actions from the root (the --from prefix not included) to the violating state: a milestone's, then the walk's. */
  trace: string[];
  /** The walk's swarm configuration. */
  swarm?: string;
  /** Of the violating state. */
  fingerprint: string;
}

/** A state a walk reached by violating a property that is not a target (see the top of this file). */
export interface Milestone {
  /** Its actions from the root (the --from state), as text. */
  trace: string[];
  /** The properties it violates: a walk from it looks for others. */
  known: string[];
}

export interface WalkBatch {
  /** Walks first, first + 1, ..., first + count - 1. */
  first: number;
  count: number;
  seed: number;
  depth: number;
  swarm: boolean;
  /** true: a walk ends at its first violating state and the batch at its first violating walk. */
  stopAtFirst: boolean;
  /** --continue: property -> lowest walk index known to violate it; walks above it need not check it. */
  known?: Record<string, number>;
  /** Stop starting walks after this (Date.now() ms). */
  deadline?: number;
  /** Int32 flag: nonzero stops the batch before its next walk. */
  stop?: SharedArrayBuffer;
  /** The properties reported (undefined: all); a new violation of another makes a milestone. */
  targets?: string[];
  /** The milestones a walk may start from. */
  milestones?: Milestone[];
}

export interface WalkBatchResult {
  first: number;
  /** Actions taken by each walk run, in order (walks first, first + 1, ...). */
  steps: number[];
  hits: WalkHit[];
  /** The milestones reached, in walk order. */
  milestones?: (Milestone & { walk: number })[];
}

export interface WalkContext<S, A> {
  model: Model<S, A>;
  root: S;
  swarm?: Swarm<S, A>;
  /** The milestones' states, by trace, kept from batch to batch (filled by runWalks). */
  milestoneStates?: Map<string, S>;
}

/** A milestone's state: replayed from the root once per context. */
function milestoneState<S, A>(ctx: WalkContext<S, A>, m: Milestone): S {
  const cache = (ctx.milestoneStates ??= new Map());
  const key = m.trace.join('\n');
  let s = cache.get(key);
  if (s === undefined) {
    // Bounded: the pool changes slowly, and a replay is cheap beside an epoch.
    if (cache.size >= 4 * MAX_MILESTONES) cache.clear();
    cache.set(key, (s = replayTexts(ctx.model, ctx.root, m.trace).states.at(-1)!));
  }
  return s;
}

/** Run a batch of walks (in a worker, or in this thread). */
export function runWalks<S, A>(ctx: WalkContext<S, A>, task: WalkBatch): WalkBatchResult {
  // The walks are the inner loop: they run the search transitions (Model.forSearch).
  const full = searchModel(ctx.model);
  const transitionViolations = transitionChecker(full);
  const { root } = ctx;
  const flag = task.stop ? new Int32Array(task.stop) : undefined;
  const targets = task.targets ? new Set(task.targets) : undefined;
  const reported = full.properties.map((p) => p.id).filter((p) => targets === undefined || targets.has(p));
  const pool = task.milestones ?? [];
  // What the root already violates is no milestone (a --from state may).
  const atRoot = targets ? checkProperties(full, root).map((v) => v.property) : [];
  const steps: number[] = [];
  const hits: WalkHit[] = [];
  const milestones: (Milestone & { walk: number })[] = [];
  const states: S[] = [];
  const acts: A[] = [];
  const shares: number[] = [];
  for (let w = task.first; w < task.first + task.count; w++) {
    if (flag && Atomics.load(flag, 0) !== 0) break;
    if (task.deadline !== undefined && Date.now() >= task.deadline) break;
    const rand = walkRandom(task.seed, w);
    const config = task.swarm && ctx.swarm ? ctx.swarm(rand, root) : undefined;
    const model = config?.model ? searchModel(config.model) : full;
    // Properties this walk reports (with --continue, those not known from a lower walk).
    let check: Set<string> | undefined;
    if (task.known || targets) check = new Set(reported.filter((p) => !(task.known?.[p]! < w)));
    if (check?.size === 0) {
      steps.push(0);
      continue;
    }
    // With targets, every property is checked: the others' new violations are milestones.
    const checked = targets ? undefined : check;
    let s = config?.root ?? root;
    let from: Milestone | undefined;
    if (pool.length > 0 && rand() < MILESTONE_START) {
      from = pool[pick(rand, pool.length)]!;
      s = milestoneState(ctx, from);
    }
    states.length = 0;
    acts.length = 0;
    let n = 0;
    let stop = false;
    const trace = (): string[] => [...(from?.trace ?? []), ...acts.map((x, k) => model.formatAction(states[k]!, x))];
    while (n < task.depth) {
      const step = walkStep(model, config, rand, s, shares);
      if (step === undefined) break;
      const { a, t } = step;
      // Transition properties on every step, then the state properties of the state reached.
      const tv = transitionViolations(s, a, t, checked);
      states.push(s);
      acts.push(a);
      s = t;
      n++;
      const found = tv.length > 0 ? [...tv, ...checkProperties(model, t, checked)] : checkProperties(model, t, checked);
      if (found.length === 0) continue;
      const vs = targets ? found.filter((v) => check!.has(v.property)) : found;
      if (vs.length === 0) {
        const known = from?.known ?? atRoot;
        const fresh = [...new Set(found.filter((v) => !targets!.has(v.property) && !known.includes(v.property)).map((v) => v.property))];
        if (fresh.length === 0) continue;
        milestones.push({ walk: w, trace: trace(), known: [...known, ...fresh] });
        break;
      }
      const fingerprint = stateFingerprint(model, t);
      const byProp = new Map<string, string[]>();
      for (const v of vs) byProp.set(v.property, [...(byProp.get(v.property) ?? []), v.detail]);
      const tr = trace();
      for (const [property, details] of byProp) {
        hits.push({ walk: w, property, details, trace: tr, ...(config ? { swarm: config.describe() } : {}), fingerprint });
        check?.delete(property);
      }
      if (task.stopAtFirst || check?.size === 0) {
        stop = task.stopAtFirst;
        break;
      }
    }
    steps.push(n);
    if (stop) break;
  }
  return { first: task.first, steps, hits, ...(milestones.length > 0 ? { milestones } : {}) };
}

/** What a simulate worker is built from (piscina workerData). */
export interface SimulateWorkerData {
  model: ModelSpec;
  swarm?: SwarmSpec;
  /** The --from prefix, replayed from model.initial() to get the root. */
  fromTexts: string[];
}

/** Build a walk context from its serialisable description (the worker side). */
export async function walkContext(data: SimulateWorkerData): Promise<WalkContext<unknown, unknown>> {
  const model = await buildModel(data.model);
  const root = data.fromTexts.length > 0 ? replayTexts(model, model.initial(), data.fromTexts).states.at(-1)! : model.initial();
  const swarm = data.swarm ? await buildSwarm(data.swarm, model) : undefined;
  return { model, root, ...(swarm ? { swarm } : {}) };
}

// ---------------------------------------------------------------- the search

export interface SimulateProgress {
  walks: number;
  states: number;
  milestones: number;
  statesPerSec: number;
  elapsedMs: number;
  /** Properties violated so far (--continue). */
  found: number;
}

export interface SimulateOptions {
  workers: number;
  /** The model and swarm the workers build, and the --from prefix. */
  worker: SimulateWorkerData;
  seed: number;
  depth: number;
  /** Walk budget (deterministic results); at least one of walks and timeMs. */
  walks?: number;
  /** Time budget in ms. */
  timeMs?: number;
  swarm: boolean;
  stopAtFirst: boolean;
  /** Walks per batch (default 32). */
  batch?: number;
  /** The properties reported (undefined: all); a new violation of another ends its walk in a milestone. */
  targets?: string[];
  /** Walks per epoch of the milestone pool (default EPOCH_WALKS; a multiple of batch). */
  epochWalks?: number;
  onProgress?(p: SimulateProgress): void;
  progressMs?: number;
  shouldStop?(): boolean;
}

export type SimulateOutcome = 'violation' | 'budget' | 'interrupted';

export interface SimulateResult {
  outcome: SimulateOutcome;
  /** Walks counted: stopping at a violation, walks 0..its index; otherwise every walk run. */
  walks: number;
  /** Actions taken by the walks counted (states visited, the root not included). */
  states: number;
  /** Milestones reached by the walks counted. */
  milestones: number;
  /** Stopping at the first: the violating walk of lowest index; --continue: per property, ordered by walk. */
  hits: WalkHit[];
  elapsedMs: number;
  statesPerSec: number;
  /** Part of elapsedMs spent starting the pool. */
  startupMs: number;
  workers: number;
}

/**
 * Where batches of walks run: threads of this process (simulate) or worker
 * processes on Redis (src/engine/simulate-redis.ts). The schedule and the
 * results (walkSearch) are the same for both.
 */
export interface WalkRunner {
  /** Batches kept in flight. */
  readonly slots: number;
  run(task: WalkBatch): Promise<WalkBatchResult>;
  /** Ctrl-C: the batches in flight end as soon as they can (the walks they ran count). */
  interrupt(): void;
}

/** What walkSearch needs of SimulateOptions (not where the walks run). */
export type WalkSearchOptions = Omit<SimulateOptions, 'workers' | 'worker'>;

/** Run walks on a pool until a violation (or, with --continue, the budget) or the budget. */
export async function simulate(options: SimulateOptions): Promise<SimulateResult> {
  const { workers, seed, depth, stopAtFirst } = options;
  if (!Number.isInteger(workers) || workers < 1) throw new ParseError(`workers must be a positive integer, got ${workers}`);
  checkBudget(options);
  const t0 = performance.now();
  const stop = new SharedArrayBuffer(4);
  const pool = new Piscina({
    filename: SIMULATE_WORKER_FILE,
    workerData: options.worker,
    minThreads: workers,
    maxThreads: workers,
    idleTimeout: 60_000,
    concurrentTasksPerWorker: 1,
  });
  try {
    // Every worker builds its model before the clock of the budget matters.
    await Promise.all(Array.from({ length: workers }, () => pool.run({ first: 0, count: 0, seed, depth, swarm: false, stopAtFirst } satisfies WalkBatch)));
    const startupMs = performance.now() - t0;
    const runner: WalkRunner = {
      slots: workers * 2,
      run: (task) => pool.run({ ...task, stop } satisfies WalkBatch) as Promise<WalkBatchResult>,
      interrupt: () => Atomics.store(new Int32Array(stop), 0, 1),
    };
    return { ...(await walkSearch(runner, options, t0, startupMs)), workers };
  } finally {
    await pool.destroy();
  }
}

/** A budget is required: walks, time, or both. */
export function checkBudget(o: WalkSearchOptions): void {
  if (o.walks === undefined && o.timeMs === undefined) throw new ParseError('simulate needs a budget: walks or time');
}

/**
 * The schedule of the walks, on any runner: batches of consecutive walks in
 * index order, and the results that do not depend on which runner ran which
 * batch (see the top of this file). `t0`: when the search started;
 * `startupMs`: the part of it spent starting the runner.
 */
export async function walkSearch(runner: WalkRunner, options: WalkSearchOptions, t0: number, startupMs: number): Promise<Omit<SimulateResult, 'workers'>> {
  const { seed, depth, walks, timeMs, stopAtFirst, onProgress, shouldStop, targets } = options;
  const size = options.batch ?? 32;
  // Without targets there are no milestones, and one epoch holds every walk: no barrier.
  const milestonesOn = targets !== undefined;
  const epochWalks = milestonesOn ? (options.epochWalks ?? EPOCH_WALKS) : Infinity;
  if (milestonesOn && epochWalks % size !== 0) throw new Error(`simulate: an epoch (${epochWalks} walks) must hold whole batches of ${size}`);
  const epochOf = (b: number): number => Math.floor((b * size) / epochWalks);
  let epoch = 0;
  let pool: Milestone[] = [];
  const progressMs = options.progressMs ?? 3000;
  const deadline = timeMs !== undefined ? Date.now() + timeMs : undefined;
  // Per batch index: its result.
  const results = new Map<number, WalkBatchResult>();
  // Property -> the hit of lowest walk index.
  const best = new Map<string, WalkHit>();
  const lowest = (): number => Math.min(Infinity, ...[...best.values()].map((h) => h.walk));
  let interrupted = false;
  let lastProgress = performance.now();
  let doneWalks = 0;
  let doneStates = 0;
  let doneMilestones = 0;
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    let nextBatch = 0;
    let inFlight = 0;
    let failed = false;
    let settled = false;
    const more = (): boolean => {
      const first = nextBatch * size;
      if (walks !== undefined && first >= walks) return false;
      if (deadline !== undefined && Date.now() >= deadline) return false;
      // Stopping at the first: batches after the lowest violating walk cannot lower it.
      if (stopAtFirst && first > lowest()) return false;
      return true;
    };
    const pump = (): void => {
      if (failed || settled) return;
      if (!interrupted && shouldStop?.()) {
        interrupted = true;
        runner.interrupt();
      }
      if (onProgress) {
        const now = performance.now();
        if (now - lastProgress >= progressMs) {
          lastProgress = now;
          const elapsedMs = now - t0;
          onProgress({ walks: doneWalks, states: doneStates, milestones: doneMilestones, statesPerSec: (doneStates * 1000) / elapsedMs, elapsedMs, found: best.size });
        }
      }
      for (;;) {
        while (!interrupted && inFlight < runner.slots && more() && epochOf(nextBatch) === epoch) dispatch(nextBatch++);
        if (inFlight > 0) return;
        // Every batch of the epoch is back: the next one starts from its milestones too.
        if (!interrupted && more()) {
          nextEpoch();
          continue;
        }
        settled = true;
        resolve();
        return;
      }
    };
    // The pool for the next epoch: this one's milestones in walk order, at
    // most MAX_MILESTONES, a full pool replacing at random (seeded: the
    // same pool whoever ran the walks).
    const nextEpoch = (): void => {
      const first = (epoch * epochWalks) / size;
      const next = [...pool];
      const rand = walkRandom(seed, -1 - epoch);
      for (let b = first; b < nextBatch; b++)
        for (const m of results.get(b)?.milestones ?? []) {
          const kept: Milestone = { trace: m.trace, known: m.known };
          if (next.length < MAX_MILESTONES) next.push(kept);
          else next[pick(rand, MAX_MILESTONES)] = kept;
        }
      pool = next;
      epoch++;
    };
    const dispatch = (b: number): void => {
      const first = b * size;
      const count = walks !== undefined ? Math.min(size, walks - first) : size;
      const known = stopAtFirst ? undefined : Object.fromEntries([...best].map(([p, h]) => [p, h.walk]));
      const task: WalkBatch = {
        first,
        count,
        seed,
        depth,
        swarm: options.swarm,
        stopAtFirst,
        ...(known ? { known } : {}),
        ...(deadline !== undefined ? { deadline } : {}),
        ...(targets ? { targets } : {}),
        ...(pool.length > 0 ? { milestones: pool } : {}),
      };
      inFlight++;
      runner.run(task).then(
        (r: WalkBatchResult) => {
          inFlight--;
          results.set(b, r);
          doneWalks += r.steps.length;
          for (const n of r.steps) doneStates += n;
          doneMilestones += r.milestones?.length ?? 0;
          for (const h of r.hits) {
            const old = best.get(h.property);
            if (old === undefined || h.walk < old.walk) best.set(h.property, h);
          }
          pump();
        },
        (e: unknown) => {
          failed = true;
          reject(e);
        },
      );
    };
    // Poll for Ctrl-C and progress while batches run.
    timer = setInterval(pump, 200);
    pump();
  }).finally(() => clearInterval(timer));

  // The hits and counts that do not depend on scheduling.
  let hits = [...best.values()].sort((a, b) => a.walk - b.walk || (a.property < b.property ? -1 : 1));
  let countedWalks = 0;
  let states = 0;
  let milestones = 0;
  const cut = stopAtFirst && hits.length > 0 ? hits[0]!.walk : Infinity;
  if (stopAtFirst && hits.length > 0) hits = hits.filter((h) => h.walk === cut);
  for (const r of results.values())
    r.steps.forEach((n, k) => {
      if (r.first + k <= cut) {
        countedWalks++;
        states += n;
      }
    });
  for (const r of results.values()) for (const m of r.milestones ?? []) if (m.walk <= cut) milestones++;
  const elapsedMs = performance.now() - t0;
  return {
    outcome: interrupted ? 'interrupted' : hits.length > 0 ? 'violation' : 'budget',
    walks: countedWalks,
    states,
    milestones,
    hits,
    elapsedMs,
    statesPerSec: elapsedMs - startupMs > 0 ? (states * 1000) / (elapsedMs - startupMs) : 0,
    startupMs,
  };
}

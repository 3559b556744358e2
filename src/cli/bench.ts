// `mmcheck bench` (`npm run bench`): fixed configurations, each explored
//   - by the parallel explorer with 1 worker running the reference (immer)
//     transitions: the "before" of issue 12, measured in the same run;
//   - by the parallel explorer with 1 and with 2 workers (generated and
//     distinct states per second, the 2-worker speed-up, bytes per visited
//     state in the fingerprint table, peak memory, peak memory per state);
//   - by two 1-worker processes at once: what the machine gives two
//     independent searches, against which the 2-worker pool is measured
//     (both in alternate rounds, the median of each: POOL_ROUNDS);
//   - by a NAIVE baseline: immer states from model.next, no canonical
//     renaming, JSON.stringify(state) as the key of a Set<string>, plain
//     BFS (the properties are checked on each new state, as the explorer
//     does), with the ratio of its time to the 1-worker time;
// then simulate's walks (swarm, one thread, in a fresh process) on the
// `default` and `lock` bounds, against the explorer's generated states/s;
// and the `distributed` row: the coordinator plus two `mmcheck worker`
// processes on a local redis-server against the 2-thread pool on `default`
// (src/cli/bench-distributed.ts), skipped, saying so, without redis-server.
// Times exclude starting the pool (its threads and the model built in each,
// 0.3-1 s, printed apart). A measurement, not a test: run it on an otherwise idle machine (it prints
// the load average; another process on a core halves what 2 workers can do)
// and compare runs on the same machine.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadavg, availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setAutoFreeze } from 'immer';
import { checkProperties, type Model } from '../engine/model.ts';
import { exploreParallel } from '../engine/parallel.ts';
import type { Bounds } from '../../models/mm/model.ts';
import { buildMmModel, mmModelSpec, type MmSpec } from './model-spec.ts';
import { EXIT, UsageError, num, out } from './common.ts';

const run = promisify(execFile);

export interface BenchConfig {
  name: string;
  model: string;
  bounds: Partial<Bounds>;
  depth: number;
  /** false: only the 1- and 2-worker runs (a configuration too large for the immer, pair and naive baselines). */
  baselines?: boolean;
  /** true: the pair runs even without the other baselines (a long run, where the threads' warm-up is amortised). */
  pair?: boolean;
}

const SPIN_CORE: Partial<Bounds> = { procs: 3, pages: 2, maxLen: 2, ops: ['mmap', 'fault', 'fork', 'mprotect', 'munmap', 'exit'] };

export const BENCH_CONFIGS: readonly BenchConfig[] = [
  { name: 'default', model: 'mainline', bounds: {}, depth: 4 },
  // The same bounds one level deeper: a run of seconds rather than one, past V8's warm-up.
  { name: 'default-5', model: 'mainline', bounds: {}, depth: 5, baselines: false, pair: true },
  { name: 'deep', model: 'mainline', bounds: { procs: 2, pages: 4, maxLen: 2 }, depth: 5 },
  { name: 'fork-heavy', model: 'mainline', bounds: { procs: 3, pages: 2, maxLen: 1, ops: ['mmap', 'fault', 'fork', 'munmap', 'exit'] }, depth: 7 },
  { name: 'enomem', model: 'mainline', bounds: { procs: 2, pages: 3, maxLen: 2, enomem: 1 }, depth: 4 },
  // The same bounds without injection: what --enomem 1 costs per generated state.
  { name: 'enomem-off', model: 'mainline', bounds: { procs: 2, pages: 3, maxLen: 2 }, depth: 4 },
  // Four interchangeable processes: what process symmetry and canonical renaming save over the naive search.
  { name: 'symmetric', model: 'mainline', bounds: { procs: 4, pages: 1, maxLen: 1, ops: ['mmap', 'fault', 'fork', 'munmap', 'exit'] }, depth: 9 },
  // Lock granularity: syscalls split at their lock points, one rmap walker.
  { name: 'lock', model: 'mainline', bounds: { procs: 2, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1 }, depth: 8 },
  // The same two levels deeper: a run of tens of seconds rather than a few, past V8's warm-up.
  { name: 'lock-10', model: 'mainline', bounds: { procs: 2, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1 }, depth: 10, baselines: false, pair: true },
  // lock-10 under partial-order reduction (--por, issue 17): the bound, states with and without it side by side.
  { name: 'lock-10-por', model: 'mainline', bounds: { procs: 2, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1, por: true }, depth: 10, baselines: false },
  // Two threads in one process (issue 17): per-VMA-lock faults, queued writers, faults cut inside; every reachable state.
  // 376 states with one thread, 197,294 with two: interleavings within one process, which the component-level
  // reduction of --por (models/mm/por.ts) does not prune.
  { name: 'threads', model: 'mainline', bounds: { procs: 1, pages: 2, maxLen: 1, ops: ['mmap', 'fault', 'munmap', 'mremap'], granularity: 'lock', walkers: 1, threads: 2 }, depth: 40, baselines: false },
  // The lock bounds with two threads a process, without and with --por: the mmap_lock-holder rule
  // (models/mm/por.ts mmapHolderAlone) defers a sibling's syscalls while the mmap_lock holder runs.
  { name: 'lock-threads', model: 'mainline', bounds: { procs: 2, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1, threads: 2 }, depth: 9, baselines: false },
  { name: 'lock-threads-por', model: 'mainline', bounds: { procs: 2, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1, threads: 2, por: true }, depth: 9, baselines: false },
  // The syscall-level core a C explicit-state checker (SPIN) runs on an equivalent model (issue 12).
  { name: 'spin-core', model: 'mainline', bounds: SPIN_CORE, depth: 8 },
  // A run past a million states, for memory per state.
  { name: 'spin-core-9', model: 'mainline', bounds: SPIN_CORE, depth: 9, baselines: false },
];

/** `--only distributed`: only the distributed row. */
const DISTRIBUTED = 'distributed';
/** The bound of the distributed row (a run of seconds, so start-up and warm-up do not decide it), and its runs of each side. */
const DISTRIBUTED_CONFIG = 'default-5';
const DISTRIBUTED_REPEAT = 1;

/** The C checker's figures on spin-core's alphabet (issue 12; SPIN 6.5.2, no symmetry reduction, same kind of machine). */
export const SPIN_REFERENCE = [
  'SPIN 6.5.2 on an equivalent model (issue 12): procs 3 depth 8: 569,161 states in 3.1 s; depth 9: 2.6 M in 9 s;',
  'procs 4 depth 9: 13 M in 28 s; out of 16 GB at procs 4 depth 10 and procs 7 depth 9',
];

/** The naive baseline gives up after this long (its ratio is then a lower bound). */
const NAIVE_LIMIT_MS = 300_000;

export interface BenchRow {
  name: string;
  generated: number;
  distinct: number;
  /** 1 worker, reference (immer) transitions: seconds and generated/s. */
  immerSeconds: number;
  immerGeneratedPerSec: number;
  /** generatedPerSec1 / immerGeneratedPerSec. */
  speedupOverImmer: number;
  /** Two 1-worker processes at once: their generated states per second together, while both run (pairRate). */
  pairGeneratedPerSec: number;
  /** The 2-worker pool's generated/s as a fraction of the pair's. */
  poolOfPair: number;
  /** Peak resident memory of the 1-worker run per distinct state. */
  peakBytesPerState: number;
  /** Seconds to start the pool of 1 and of 2 workers (not in seconds1, seconds2). */
  startup1: number;
  startup2: number;
  /** Seconds of search with 1 and 2 workers, the pool started. */
  seconds1: number;
  seconds2: number;
  generatedPerSec1: number;
  distinctPerSec1: number;
  generatedPerSec2: number;
  distinctPerSec2: number;
  speedup2: number;
  /** Fingerprint-table bytes per visited state. */
  bytesPerState: number;
  peakRssMb: number;
  naiveSeconds: number;
  naiveDistinct: number;
  /** false when the baseline hit NAIVE_LIMIT_MS (then the ratio is a lower bound). */
  naiveFinished: boolean;
  naivePeakRssMb: number;
  /** Naive seconds / 1-worker seconds. */
  naiveRatio: number;
}

/** The naive baseline: plain BFS with JSON.stringify keys in a Set; returns seconds, distinct states, finished. */
export function naiveBfs<S, A>(model: Model<S, A>, depth: number, limitMs = NAIVE_LIMIT_MS): { seconds: number; distinct: number; generated: number; finished: boolean } {
  const t0 = performance.now();
  const root = model.initial();
  const seen = new Set<string>([JSON.stringify(root)]);
  checkProperties(model, root);
  let frontier: S[] = [root];
  let generated = 0;
  for (let d = 0; d < depth && frontier.length > 0; d++) {
    const next: S[] = [];
    for (const s of frontier) {
      for (const a of model.actions(s)) {
        const t = model.next(s, a);
        generated++;
        const key = JSON.stringify(t);
        if (seen.has(key)) continue;
        seen.add(key);
        checkProperties(model, t);
        next.push(t);
      }
      if (performance.now() - t0 > limitMs) return { seconds: (performance.now() - t0) / 1000, distinct: seen.size, generated, finished: false };
    }
    frontier = next;
  }
  return { seconds: (performance.now() - t0) / 1000, distinct: seen.size, generated, finished: true };
}

/** One measurement, in this process: a search with 1 or 2 workers, 1 worker on immer transitions, the naive baseline, or simulate's walks. */
export type BenchPhase = '1' | '2' | 'immer' | 'naive' | 'walks';
const PHASES: readonly BenchPhase[] = ['1', '2', 'immer', 'naive', 'walks'];

/**
 * simulate's inner loop (issue 15: walk throughput against the explorer's
 * generated states/s): this many swarm walks of up to 40 operations, seed
 * 1, in one thread, on each of these configurations' bounds.
 */
const WALKS: Readonly<Record<string, number>> = { default: 60_000, lock: 20_000 };
export interface PhaseResult {
  generated: number;
  distinct: number;
  /** Search seconds (pool start-up excluded). */
  seconds: number;
  startup: number;
  bytesPerState: number;
  /** false: the naive baseline hit its time limit. */
  finished: boolean;
  /** This process's peak resident memory. */
  peakRssMb: number;
  /**
   * A search's progress on the machine's clock: (epoch ms, generated so far)
   * pairs, flat, from the search's start (the pool started) to its end, about
   * PROGRESS_MS apart. For the pair (pairRate).
   */
  progress?: number[];
}

/** The table's first column: as wide as the longest configuration name. */
const NAME_WIDTH = Math.max(...BENCH_CONFIGS.map((c) => c.name.length));

/** How often a search phase samples its progress (a poll between batches: about free). */
const PROGRESS_MS = 50;

/** Generated states of a progress series at epoch ms t: linear between samples, clamped to its ends. */
function generatedAt(progress: readonly number[], t: number): number {
  const n = progress.length / 2;
  if (t <= progress[0]!) return progress[1]!;
  for (let i = 1; i < n; i++) {
    const t1 = progress[2 * i]!;
    if (t <= t1) {
      const t0 = progress[2 * i - 2]!;
      const g0 = progress[2 * i - 1]!;
      const g1 = progress[2 * i + 1]!;
      return t1 === t0 ? g1 : g0 + ((g1 - g0) * (t - t0)) / (t1 - t0);
    }
  }
  return progress[2 * n - 1]!;
}

/**
 * The generated states per second of searches running at once, counted only
 * while all of them run: from the last start to the first end. The sum of
 * their own averages would count the slower one's last stretch, run alone
 * on a machine no longer shared, at its unshared speed (on this 2-vCPU
 * machine about 1.5 times the shared one). NaN when they do not overlap.
 */
export function pairRate(runs: readonly { progress: readonly number[] }[]): number {
  const from = Math.max(...runs.map((r) => r.progress[0]!));
  const to = Math.min(...runs.map((r) => r.progress.at(-2)!));
  if (!(to > from)) return NaN;
  const generated = runs.reduce((sum, r) => sum + generatedAt(r.progress, to) - generatedAt(r.progress, from), 0);
  return (generated * 1000) / (to - from);
}

export async function runPhase(c: BenchConfig, phase: BenchPhase): Promise<PhaseResult> {
  setAutoFreeze(false);
  const spec: MmSpec = { variant: c.model, bounds: c.bounds, ...(phase === 'immer' ? { options: { search: 'immer' } } : {}) };
  const model = await buildMmModel(spec);
  const peak = (): number => process.resourceUsage().maxRSS / 1024;
  if (phase === 'walks') {
    // Loaded here only: the other phases' processes stay as they were (peak memory is measured).
    const { runWalks } = await import('../engine/simulate.ts');
    const { mmSwarm } = await import('./mm-search.ts');
    const t0 = performance.now();
    const r = runWalks({ model, root: model.initial(), swarm: mmSwarm(model.bounds, true, model) }, { first: 0, count: WALKS[c.name] ?? 10_000, seed: 1, depth: 40, swarm: true, stopAtFirst: false });
    const visited = r.steps.reduce((x, y) => x + y, 0);
    return { generated: visited, distinct: NaN, seconds: (performance.now() - t0) / 1000, startup: 0, bytesPerState: NaN, finished: true, peakRssMb: peak() };
  }
  if (phase === 'naive') {
    const nv = naiveBfs(model, c.depth);
    return { generated: nv.generated, distinct: nv.distinct, seconds: nv.seconds, startup: 0, bytesPerState: NaN, finished: nv.finished, peakRssMb: peak() };
  }
  const epoch = (): number => performance.timeOrigin + performance.now();
  const called = epoch();
  const progress: number[] = [];
  const r = await exploreParallel(model, {
    depth: c.depth,
    stopAtFirst: false,
    workers: phase === 'immer' ? 1 : Number(phase),
    spec: mmModelSpec(spec),
    progressMs: PROGRESS_MS,
    onProgress: (p) => progress.push(epoch(), p.generated),
  });
  // The ends: the search starts (generated 0) once the pool has started, and ends with all it generated.
  progress.unshift(called + r.startupMs, 0);
  progress.push(called + r.elapsedMs, r.generated);
  return {
    progress,
    generated: r.generated,
    distinct: r.distinct,
    seconds: (r.elapsedMs - r.startupMs) / 1000,
    startup: r.startupMs / 1000,
    bytesPerState: r.visitedBytesPerState,
    finished: true,
    peakRssMb: peak(),
  };
}

/** Each phase in a fresh process, so that peak memory and the heap are its own. */
async function runPhaseIsolated(c: BenchConfig, phase: BenchPhase): Promise<PhaseResult> {
  const bin = fileURLToPath(new URL('../../bin/mmcheck.js', import.meta.url));
  const { stdout } = await run(process.execPath, [bin, 'bench', '--only', c.name, '--phase', phase, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 }).catch(
    (e: { stderr?: string; code?: number }) => {
      throw new Error(`bench ${c.name} phase ${phase} failed: ${e.stderr?.trim().split('\n').at(-1) ?? e.code}`);
    },
  );
  return JSON.parse(stdout) as PhaseResult;
}

/**
 * Rounds of the 2-worker pool and the pair where the pair is run: this
 * machine has slower spells of a minute or more (a third slower), and one
 * run of each, one after the other, could fall on either side of a change;
 * alternate rounds and the median of each put both sides in the same spells.
 */
const POOL_ROUNDS = 3;

/** The median of xs by key (the upper one of an even count). */
export function medianBy<T>(xs: readonly T[], key: (x: T) => number): T {
  if (xs.length === 0) throw new Error('median of nothing');
  return [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]!;
}

export async function runBench(c: BenchConfig, naive = true): Promise<BenchRow> {
  const baselines = c.baselines !== false;
  const im = baselines ? await runPhaseIsolated(c, 'immer') : undefined;
  const r1 = await runPhaseIsolated(c, '1');
  // The 2-worker pool, and two independent 1-worker searches at once (the
  // machine's own scaling), in alternate rounds.
  const withPair = baselines || c.pair === true;
  const pools: PhaseResult[] = [];
  const pairs: PhaseResult[][] = [];
  for (let round = 0; round < (withPair ? POOL_ROUNDS : 1); round++) {
    pools.push(await runPhaseIsolated(c, '2'));
    if (withPair) pairs.push(await Promise.all([runPhaseIsolated(c, '1'), runPhaseIsolated(c, '1')]));
  }
  for (const r of [...pools, ...(im ? [im] : []), ...pairs.flat()])
    if (r.generated !== r1.generated || r.distinct !== r1.distinct) throw new Error(`bench ${c.name}: the measurements disagree on the state counts`);
  const r2 = medianBy(pools, (r) => r.generated / r.seconds);
  const nv = naive && baselines ? await runPhaseIsolated(c, 'naive') : undefined;
  const pairGeneratedPerSec = pairs.length === 0 ? NaN : medianBy(pairs.map((p) => pairRate(p.map((r) => ({ progress: r.progress! })))), (x) => x);
  return {
    name: c.name,
    immerSeconds: im?.seconds ?? NaN,
    immerGeneratedPerSec: im ? im.generated / im.seconds : NaN,
    speedupOverImmer: im ? im.seconds / r1.seconds : NaN,
    pairGeneratedPerSec,
    poolOfPair: r2.generated / r2.seconds / pairGeneratedPerSec,
    peakBytesPerState: (r1.peakRssMb * 2 ** 20) / r1.distinct,
    startup1: r1.startup,
    startup2: r2.startup,
    generated: r1.generated,
    distinct: r1.distinct,
    seconds1: r1.seconds,
    seconds2: r2.seconds,
    generatedPerSec1: r1.generated / r1.seconds,
    distinctPerSec1: r1.distinct / r1.seconds,
    generatedPerSec2: r2.generated / r2.seconds,
    distinctPerSec2: r2.distinct / r2.seconds,
    speedup2: r1.seconds / r2.seconds,
    bytesPerState: r1.bytesPerState,
    peakRssMb: Math.max(r1.peakRssMb, r2.peakRssMb),
    naiveSeconds: nv?.seconds ?? NaN,
    naiveDistinct: nv?.distinct ?? NaN,
    naiveFinished: nv?.finished ?? false,
    naivePeakRssMb: nv?.peakRssMb ?? NaN,
    naiveRatio: (nv?.seconds ?? NaN) / r1.seconds,
  };
}

/** The naive columns: '>' marks a baseline stopped at its time limit; '-' a skipped one. */
function naiveColumns(r: BenchRow): string {
  if (Number.isNaN(r.naiveSeconds)) return `${'-'.padStart(8)} ${'-'.padStart(14)} ${'-'.padStart(6)} ${'-'.padStart(6)}`;
  const mark = r.naiveFinished ? '' : '>';
  return `${(mark + r.naiveSeconds.toFixed(1)).padStart(8)} ${num(r.naiveDistinct).padStart(14)} ${num(r.naivePeakRssMb).padStart(6)} ${(mark + r.naiveRatio.toFixed(1)).padStart(6)}`;
}

const TARGETS = [
  '>= 100k generated/s per worker at syscall granularity on default, >= 40k on lock',
  'spin-core exhausted in <= 10 s with 2 workers',
  '<= 300 B of peak memory per distinct state on a run of >= 1 M states',
  '--enomem 1 costs <= 3x per generated state (enomem against enomem-off)',
  '2 workers >= 90 % of two independent 1-worker processes',
];

function rowLine(r: BenchRow): string {
  const immer = Number.isNaN(r.immerSeconds) ? '-'.padStart(7) + ' ' + '-'.padStart(5) : `${num(r.immerGeneratedPerSec).padStart(7)} ${(r.speedupOverImmer.toFixed(1) + 'x').padStart(5)}`;
  const pair = Number.isNaN(r.pairGeneratedPerSec) ? '-'.padStart(7) + ' ' + '-'.padStart(5) : `${num(r.pairGeneratedPerSec).padStart(7)} ${(Math.round(r.poolOfPair * 100) + '%').padStart(5)}`;
  return (
    `${r.name.padEnd(NAME_WIDTH)} ${num(r.generated).padStart(10)} ${num(r.distinct).padStart(9)} | ${immer} | ${r.seconds1.toFixed(1).padStart(6)} ${num(r.generatedPerSec1).padStart(7)} | ` +
    `${r.seconds2.toFixed(1).padStart(6)} ${num(r.generatedPerSec2).padStart(7)} ${r.speedup2.toFixed(2).padStart(5)} | ${pair} | ` +
    `${r.bytesPerState.toFixed(1).padStart(7)} ${num(r.peakRssMb).padStart(7)} ${num(r.peakBytesPerState).padStart(7)} | ${naiveColumns(r)}`
  );
}

export async function cmdBench(o: { only?: string; json?: boolean; naive?: boolean; phase?: string }): Promise<number> {
  const configs = o.only === undefined ? BENCH_CONFIGS : BENCH_CONFIGS.filter((c) => c.name === o.only);
  const withDistributed = o.only === undefined || o.only === DISTRIBUTED;
  if (configs.length === 0 && !withDistributed) throw new UsageError(`no benchmark "${o.only}" (${[...BENCH_CONFIGS.map((c) => c.name), DISTRIBUTED].join(', ')})`);
  if (o.phase !== undefined) {
    if (configs.length === 0 || !PHASES.includes(o.phase as BenchPhase)) throw new UsageError(`--phase is ${PHASES.join(', ')}, with --only and a configuration`);
    out(JSON.stringify(await runPhase(configs[0]!, o.phase as BenchPhase)));
    return EXIT.ok;
  }
  const rows: BenchRow[] = [];
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  if (!o.json) out(`${availableParallelism()} cores, load average ${load} (another busy process slows every column, the 2-worker and pair runs most)`);
  // The table of the configurations (none with --only distributed).
  if (!o.json && configs.length > 0) {
    out(`targets: ${TARGETS.join('; ')}`);
    out('each measurement in a fresh process; seconds exclude starting the pool; immer: 1 worker on the reference transitions (the path before issue 12);');
    out(`pair: two 1-worker processes at once, their generated/s while both run, and the 2-worker pool as a share of it; where the pair runs, 2w and pair are each the median of ${POOL_ROUNDS} alternate runs;`);
    out('peak MB and B/dist: the 1- or 2-worker process (naive: its own)');
    out(
      `${'config'.padEnd(NAME_WIDTH)} ${'generated'.padStart(10)} ${'distinct'.padStart(9)} | ${'immer/s'.padStart(7)} ${'gain'.padStart(5)} | ${'1w s'.padStart(6)} ${'gen/s'.padStart(7)} | ${'2w s'.padStart(6)} ${'gen/s'.padStart(7)} ${'x2w'.padStart(5)} | ${'pair/s'.padStart(7)} ${'2w/pr'.padStart(5)} | ${'B/visit'.padStart(7)} ${'peak MB'.padStart(7)} ${'B/dist'.padStart(7)} | ${'naive s'.padStart(8)} ${'naive distinct'.padStart(14)} ${'MB'.padStart(6)} ${'ratio'.padStart(6)}`,
    );
  }
  for (const c of configs) {
    const r = await runBench(c, o.naive !== false);
    rows.push(r);
    if (!o.json) out(rowLine(r));
  }
  const walks: { name: string; perSec: number }[] = [];
  for (const c of configs) {
    if (WALKS[c.name] === undefined) continue;
    const w = await runPhaseIsolated(c, 'walks');
    walks.push({ name: c.name, perSec: w.generated / w.seconds });
  }
  // Loaded here: bench-distributed.ts reads this module's configurations.
  const bd = withDistributed ? await import('./bench-distributed.ts') : undefined;
  const skipped = bd?.redisServerMissing();
  const distributed = bd && skipped === undefined ? await bd.benchDistributed(DISTRIBUTED_CONFIG, DISTRIBUTED_REPEAT) : undefined;
  if (o.json) out(JSON.stringify({ loadavg: loadavg(), cores: availableParallelism(), rows, walks, ...(bd ? { distributed: distributed ?? { skipped } } : {}) }, null, 2));
  else {
    for (const line of walkLines(walks, rows)) out(line);
    if (rows.some((r) => r.name === 'spin-core')) for (const line of SPIN_REFERENCE) out(line);
    if (distributed) for (const line of bd!.distributedLines(distributed)) out(line);
    else if (skipped !== undefined) out(`distributed: skipped: ${skipped}`);
    for (const line of verdicts(rows)) out(line);
    if (distributed)
      out(`distributed: 2 worker processes on Redis <= 25 % over 2 threads: ${distributed.overhead <= 0.25 ? 'met' : 'NOT met'} (${(distributed.overhead * 100).toFixed(0)} %)`);
  }
  return distributed && !distributed.identical ? EXIT.internal : EXIT.ok;
}

/** One line per target that the measured rows speak to. */
function verdicts(rows: BenchRow[]): string[] {
  const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const by = (name: string): BenchRow | undefined => rows.find((r) => r.name === name);
  const out: string[] = [];
  const def = by('default');
  const def5 = by('default-5');
  if (def) {
    const deeper = def5 ? `; default-5, the same bounds in a ${def5.seconds1.toFixed(0)} s run: ${met(def5.generatedPerSec1 >= 100_000)} (${num(def5.generatedPerSec1)})` : '';
    out.push(
      `default >= 100k generated/s per worker: ${met(def.generatedPerSec1 >= 100_000)} (${num(def.generatedPerSec1)} in a ${def.seconds1.toFixed(1)} s run, much of it V8 warming up; ${def.speedupOverImmer.toFixed(1)}x the immer path)${deeper}`,
    );
  }
  const lock = by('lock');
  const lock10 = by('lock-10');
  if (lock) {
    const deeper = lock10 ? `; lock-10, the same bounds in a ${lock10.seconds1.toFixed(0)} s run: ${met(lock10.generatedPerSec1 >= 40_000)} (${num(lock10.generatedPerSec1)})` : '';
    out.push(
      `lock >= 40k generated/s per worker: ${met(lock.generatedPerSec1 >= 40_000)} (${num(lock.generatedPerSec1)} in a ${lock.seconds1.toFixed(1)} s run; ${lock.speedupOverImmer.toFixed(1)}x the immer path)${deeper}`,
    );
  }
  const spin = by('spin-core');
  if (spin) out.push(`spin-core in <= 10 s with 2 workers: ${met(spin.seconds2 <= 10)} (${spin.seconds2.toFixed(1)} s)`);
  const big = rows.filter((r) => r.distinct >= 1_000_000);
  if (big.length > 0) {
    const worst = Math.max(...big.map((r) => r.peakBytesPerState));
    out.push(`<= 300 B peak memory per distinct state on >= 1 M states: ${met(worst <= 300)} (${num(worst)} B)`);
  }
  const en = by('enomem');
  const off = by('enomem-off');
  if (en && off) {
    const cost = off.generatedPerSec1 / en.generatedPerSec1;
    out.push(`--enomem 1 <= 3x per generated state: ${met(cost <= 3)} (${cost.toFixed(2)}x)`);
  }
  // Each thread compiles the model's hot code for itself, about a second of
  // CPU: on runs of a few seconds that warm-up, not the search, decides the
  // share; the long runs show the search's.
  const pairLine = (what: string, lo: number, hi: number): void => {
    const pairs = rows.filter((r) => !Number.isNaN(r.poolOfPair) && r.seconds1 >= lo && r.seconds1 < hi);
    if (pairs.length === 0) return;
    const worst = pairs.reduce((a, b) => (b.poolOfPair < a.poolOfPair ? b : a));
    out.push(`2 workers >= 90 % of two processes (${what}): ${met(worst.poolOfPair >= 0.9)} (lowest ${Math.round(worst.poolOfPair * 100)} %, ${worst.name})`);
  };
  pairLine('runs of 10 s or more', 10, Infinity);
  pairLine('runs of 2 to 10 s, much of them warm-up', 2, 10);
  return out;
}

/**
 * The walks' states per second against the explorer's generated states per
 * second with one worker on the same bounds, in its longer run where the
 * table has one (default-5, lock-10: past V8's warm-up).
 */
function walkLines(walks: readonly { name: string; perSec: number }[], rows: readonly BenchRow[]): string[] {
  const longer: Readonly<Record<string, string>> = { default: 'default-5', lock: 'lock-10' };
  return walks.map((w) => {
    const row = rows.find((r) => r.name === longer[w.name]) ?? rows.find((r) => r.name === w.name)!;
    const met = w.perSec >= row.generatedPerSec1 ? 'met' : 'NOT met';
    return `walks (simulate, swarm, 1 thread) on ${w.name}: ${num(w.perSec)} states/s against the explorer's ${num(row.generatedPerSec1)} generated/s on ${row.name}: ${met}`;
  });
}
